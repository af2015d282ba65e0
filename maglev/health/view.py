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

    def __len__(self) -> int:
        return len(self._svc.probers)

    def start_lateness(self) -> tuple[tuple[int, ...], float]:
        """How late every probe started against when it was due: counts by LATENESS_BUCKETS
        (then +Inf) and their sum, since the checker started."""
        return self._svc.start_lateness()

    def names(self) -> list[str]:
        """Every backend, in the order the checker holds them (the order of ListBackends)."""
        return list(self._svc.probers)

    def some(self, names: list[str]) -> list[BackendStatus]:
        """These backends only (a page): the others cost nothing. Raises NoSuchBackend."""
        out = []
        prober = self._svc.prober  # brings each one up to date (its autopilot's counts)
        now = self._svc.wallclock()
        for name in names:
            out.append(status_of(prober(name), now))
        return out


def status_of(p: BackendProber, now: float | None = None) -> BackendStatus:
    h = p.health
    return BackendStatus(
        p.backend.name, p.address, p.hc.name, p.check_type, h.enabled, h.state, h.counter, h.rise,
        h.fall, h.since, p.in_flight, h.last_result, h.last_result_time, tuple(h.history), dict(p.results),
        tuple(p.duration_counts), p.duration_sum, p.probes_sent, p.lateness, h.downs,
        h.downtime(p.svc.wallclock() if now is None else now),
        p.checks,
        p.failed_checks,
    )  # fmt: skip


__all__ = ["BackendStatus", "HealthView"]
