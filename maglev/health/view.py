"""HealthView: what other services may read of the health checker, read-only.

Built on the reactor thread from the probers as they are now (the autopilot's counts
folded in first, which never changes a state or publishes anything). The gRPC API,
the web UI, the metrics and the VPP sync read backends only through this.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, NamedTuple

from ..states import BackendState
from .state import ProbeResult, Transition

if TYPE_CHECKING:
    from .service import BackendProber, HealthService

# A BackendReading's mark: checks answered, the last result's time and the result, in
# flight, state, enabled, counter, since, history, downs, failed checks (the ones that move
# most often first: two marks that differ usually do at once).
Mark = tuple[
    int, float | None, ProbeResult | None, bool, BackendState, bool, int, float, tuple[Transition, ...], int, int
]


class BackendStatus(NamedTuple):
    """One backend as its health checker sees it now (a value: later changes do not show)."""

    name: str
    address: str
    healthcheck: str
    check_type: str
    enabled: bool
    state: BackendState
    counter: int
    rise: int
    fall: int
    since: float
    in_flight: bool
    last_result: ProbeResult | None
    last_result_time: float | None
    history: tuple[Transition, ...]
    results: Mapping[tuple[bool, str], int]  # (ok, code) -> probes
    duration_counts: tuple[int, ...]  # by DURATION_BUCKETS, then +Inf
    duration_sum: float
    probes_sent: int
    lateness: float  # of the last probe, seconds after its scheduled time
    downs: int  # up -> down transitions
    downtime: float  # seconds down so far, the current period included
    checks: int  # results so far (the sum of ``results``)
    failed_checks: int


class BackendCounts(NamedTuple):
    """The fields of a BackendStatus that every probe changes, by the same names."""

    counter: int
    in_flight: bool
    last_result: ProbeResult | None
    last_result_time: float | None
    checks: int
    failed_checks: int
    downs: int


class BackendReading(NamedTuple):
    """One backend as a read finds it, cheap when nothing about it changed.

    ``mark`` is equal for two readings of a backend when what an API message shows of it
    is, but for ``downtime``, which moves with the clock while it is down, and what its
    configuration says (address, check, rise and fall change only with a reload: a new
    generation, for which a reader keeps nothing). ``status()`` is the full status,
    built only when asked for: a read that finds most backends as it last saw them
    builds none for them. A tuple (a read makes one for every backend, and
    ``tuple.__new__`` runs no Python to make it).
    """

    name: str
    mark: Mark
    downtime: float
    prober: BackendProber

    def steady(self) -> tuple[object, ...]:
        """Equal for two readings of a backend when what only a transition, an operator's
        action or a reload changes is: address, check, enabled, state, rise, fall, since,
        history."""
        p = self.prober
        h = p.health
        _, _, _, _, state, enabled, _, since, history, _, _ = self.mark
        return (p.address, p.hc.name, enabled, state, h.rise, h.fall, since, history)

    def counts(self) -> BackendCounts:
        """What every probe changes (but the downtime), from the mark: no status is built."""
        checks, last_time, last, in_flight, _, _, counter, _, _, downs, failed = self.mark
        return tuple.__new__(BackendCounts, (counter, in_flight, last, last_time, checks, failed, downs))

    def status(self) -> BackendStatus:
        """``status_of`` the prober, from what the mark already read."""
        p = self.prober
        h = p.health
        checks, last_time, last, in_flight, state, enabled, counter, since, history, downs, failed = self.mark
        return BackendStatus(
            self.name, p.address, p.hc.name, p.check_type, enabled, state, counter, h.rise, h.fall, since, in_flight,
            last, last_time, history, p.results, tuple(p.duration_counts), p.duration_sum, p.probes_sent,
            p.lateness, downs, self.downtime, checks, failed,
        )  # fmt: skip


class HealthView:
    def __init__(self, svc: HealthService, states: Mapping[str, BackendState]) -> None:
        self._svc = svc
        self.states = states  # every backend's state, live and read-only: the one source

    def backend(self, name: str) -> BackendStatus:
        """Raises NoSuchBackend."""
        return status_of(self._svc.prober(name))

    def __iter__(self) -> Iterator[BackendStatus]:
        now = self._svc.wallclock()
        for p in list(self._svc.probers.values()):
            p.sync()
            yield status_of(p, now)

    def readings(self, names: list[str] | None = None, batch: int = 100) -> Iterator[list[BackendReading]]:
        """Every backend in the order of ``__iter__``, or these (a page; raises NoSuchBackend
        at once), as BackendReadings, ``batch`` at a time: a caller may let the reactor run
        between two batches. Which backends is settled at the call; each batch is read,
        the autopilot's counts folded in, as it is asked for (and the engine asked once a
        backend)."""
        svc = self._svc
        return self._read(list(svc.probers.values()) if names is None else svc.probers_of(names), batch)

    def _read(self, probers: list[BackendProber], batch: int) -> Iterator[list[BackendReading]]:
        for start in range(0, len(probers), batch):
            now = self._svc.wallclock()
            yield [p.reading(now) for p in probers[start : start + batch]]

    def __len__(self) -> int:
        return len(self._svc.probers)

    def start_lateness(self) -> tuple[tuple[int, ...], float]:
        """How late every probe started against when it was due: counts by LATENESS_BUCKETS
        (then +Inf) and their sum, since the checker started."""
        return self._svc.start_lateness()

    def names(self) -> list[str]:
        """Every backend, in the order the checker holds them (the order of ListBackends)."""
        return list(self._svc.probers)


def status_of(p: BackendProber, now: float | None = None) -> BackendStatus:
    h = p.health
    return BackendStatus(
        p.backend.name, p.address, p.hc.name, p.check_type, h.enabled, h.state, h.counter, h.rise,
        h.fall, h.since, p.in_flight, h.last_result, h.last_result_time, tuple(h.history), p.results,
        tuple(p.duration_counts), p.duration_sum, p.probes_sent, p.lateness, h.downs,
        h.downtime(p.svc.wallclock() if now is None else now),
        p.checks,
        p.failed_checks,
    )  # fmt: skip


__all__ = ["BackendCounts", "BackendReading", "BackendStatus", "HealthView"]
