"""HealthService: one prober per backend, scheduled on the reactor.

Each BackendProber owns one BackendHealth (the pure state machine) and at most
one probe in flight: the next probe is scheduled only when the previous one
has finished, ``next_interval`` after it was due (sooner never, later if the
probe itself took longer). First probes are spread over the fast interval so
thousands of backends do not fire on one tick.

Reload (``reconfigure``) diffs by backend name: unchanged health check keeps
probing with its state and history; a changed check restarts in ``unknown``; a
removed backend becomes ``removed`` and stops; a new one starts ``unknown``; a
changed address is applied in place; the runtime enabled flag survives unless
the file's ``enabled`` itself changed.
"""

from __future__ import annotations

import random
import time
from bisect import bisect_left
from collections.abc import Callable
from enum import Enum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from twisted.application.service import Service
from twisted.internet.interfaces import IReactorTime

from ..bus import EventBus
from ..config import Backend, Config, HealthCheck
from ..events import BackendChanged, BackendReported, BackendTransition
from ..log import Logger
from ..states import BackendState
from ..timers import TimerId, TimerQueue
from .lateness import StartLateness
from .probes import DURATION_BUCKETS, Cancellable, Pilot, Probe, ProbeFactory
from .probes.execcheck import ExecPool
from .report import Report
from .state import BackendHealth, OperatorError, ProbeResult, State, Transition, intervals
from .view import BackendReading, HealthView, Mark

if TYPE_CHECKING:
    from ..reactor import Reactor

ProbeFactoryMaker = Callable[[str | None], Any]
# Timers share reactor wake-ups on a grid (see maglev/timers.py), and every wake-up costs:
# on a 2-vCPU VM about 60 µs of CPU even when it does nothing (docs/performance.md).
# Timeouts fire up to 5 ms late. Probe starts fire up to 25 ms late, which is well inside
# the ±10% spread of the intervals; the loop then wakes 40 times a second to start probes,
# however many backends there are. A backend with an interval under COARSE_MIN_INTERVAL
# starts its probes on the 5 ms grid instead.
TIMER_RESOLUTION = 0.005
START_RESOLUTION = 0.025
COARSE_MIN_INTERVAL = 0.5
STALL = 0.05  # a probe started this much later than its grid step allows: the reactor stalled


class ProberState(Enum):
    """Where one backend's probing is. Moves (all in BackendProber):

    idle --schedule--> waiting --fire--> probing --answer--> waiting | autopilot | idle
    autopilot --first answer that is not a pass--> (as probing's answer)
    any --stop--> idle
    """

    IDLE = "idle"  # not probing: paused, disabled, removed, stopped, or not started
    WAITING = "waiting"  # a probe start is on the timer queue
    PROBING = "probing"  # one probe in flight, driven from Python
    AUTOPILOT = "autopilot"  # the pilot probes a steadily up backend by itself


# For what every read of every backend asks: an Enum's member is slow to look up.
_PROBING, _AUTOPILOT = ProberState.PROBING, ProberState.AUTOPILOT

_RESULT_KEYS: dict[tuple[bool, str], tuple[bool, str]] = {}


def result_key(ok: bool, code: str) -> tuple[bool, str]:
    """The key a prober counts a result under, one tuple for every backend: a tuple each
    was 56 bytes a backend. Codes are a handful (L4OK, L4CON, L7STS, ...); the bound only
    guards against a check that made them up."""
    key = (ok, code)
    if len(_RESULT_KEYS) < 256:
        return _RESULT_KEYS.setdefault(key, key)
    return _RESULT_KEYS.get(key, key)


class NoSuchBackend(KeyError):
    def __str__(self) -> str:
        return f"no such backend {self.args[0]!r}"


class ProbeObserved(NamedTuple):
    """What the metrics need of each probe (kept off the bus: 10,000 of these a second)."""

    backend: str
    type: str
    result: ProbeResult


class BackendProber:
    """Schedules the probes of one backend and feeds their results to its BackendHealth."""

    log = Logger()
    # One per backend, 100,000 of them: no __dict__ (docs/performance.md).
    __slots__ = (
        "svc", "backend", "name", "address", "_call", "_hc", "check_type", "intervals", "starts", "health", "_probe",
        "_pilot", "state", "_inflight", "_started", "_on_result", "_on_landed", "_fire_cb", "probes_sent",
        "_result_key", "_result_count", "_other_results", "checks", "failed_checks", "duration_counts",
        "duration_sum", "scheduled_for", "lateness",
    )  # fmt: skip

    def __init__(self, svc: HealthService, backend: Backend, hc: HealthCheck, health: BackendHealth) -> None:
        self.svc = svc
        self.backend = backend
        self.name = backend.name  # what it is held by: a reload replaces the backend, never its name
        self.address = str(backend.address)  # every read of the backend shows it: made once
        self._call: TimerId | None = None
        self.hc = hc  # also sets intervals and the queue of probe starts
        self.health = health
        self.probe = svc.factory.probe_for(backend, hc, self.address)
        self.state = ProberState.IDLE
        self._inflight: Cancellable | None = None
        self._started = 0.0
        # Bound once: per-probe closures and bound methods are young objects the
        # cyclic GC would have to walk (see maglev/gcpolicy.py).
        self._on_result = self._done
        self._on_landed = self._landed
        self._fire_cb = self._fire
        self.probes_sent = 0
        # Plain counters, exported at scrape time: no metric locks on the probe path.
        # Results by (ok, code): the first kind in two slots, others in a dict made when one
        # comes (most backends only ever see one or two kinds; a dict was 224 bytes each).
        self._result_key: tuple[bool, str] | None = None
        self._result_count = 0
        self._other_results: dict[tuple[bool, str], int] | None = None
        self.checks = self.failed_checks = 0  # the results' totals, kept as they come (a read of 10,000 adds none)
        self.duration_counts = [0] * (len(DURATION_BUCKETS) + 1)
        self.duration_sum = 0.0
        self.scheduled_for: float | None = None
        self.lateness: float = 0.0  # of the last probe, seconds after its scheduled time

    @property
    def in_flight(self) -> bool:
        state = self.state
        if state is _AUTOPILOT and self._pilot is not None:
            return self._pilot.in_flight()
        return state is _PROBING

    def reading(self, now: float) -> BackendReading:
        """The backend as a read finds it (HealthView.readings), the autopilot's counts folded
        in first: one call a backend, for a read of 10,000 of them. The mark holds every field
        of status_of that an API message shows, by value or by identity (the history and the
        last result are replaced, never changed in place), but those of the configuration
        (address, check, rise and fall: a reload)."""
        state = self.state
        if state is _AUTOPILOT and self._pilot is not None:  # in_flight's own test, inline: a call less a backend
            self.sync()
            in_flight = self._pilot.in_flight()
        else:
            in_flight = state is _PROBING
        h = self.health
        mark: Mark = (
            self.checks, h.last_result_time, h.last_result, in_flight, h.state, h.enabled, h.counter, h.since,
            h.history, h.downs, self.failed_checks,
        )  # fmt: skip
        return tuple.__new__(BackendReading, (self.name, mark, h.downtime(now), self))

    @property
    def autopilot(self) -> bool:
        """Whether the pilot drives this backend's probes by itself (see _fly)."""
        return self.state is ProberState.AUTOPILOT

    @property
    def probe(self) -> Probe:
        return self._probe

    @probe.setter
    def probe(self, probe: Probe) -> None:
        self._probe = probe
        # Connect checks and plain HTTP status checks can fly on autopilot while the
        # backend is steadily up: a capability of the probe, if it has one.
        self._pilot: Pilot | None = probe.pilot

    @property
    def hc(self) -> HealthCheck:
        return self._hc

    @hc.setter
    def hc(self, hc: HealthCheck) -> None:
        """Set only while stopped: a waiting probe start stays in the queue it was put in."""
        self._hc = hc
        self.check_type: str = hc.type.value
        self.intervals = intervals(hc.interval, hc.fast_interval, hc.down_interval)
        self.starts = self.svc.starts_for(hc)

    def schedule(self, delay: float) -> None:
        """Probe after ``delay`` unless one is already waiting or running."""
        if self.state is not ProberState.IDLE or not self.health.probing:
            return
        self.scheduled_for = self.svc.clock.seconds() + delay
        self._call = self.starts.call_later(delay, self._fire_cb)
        self.state = ProberState.WAITING

    def stop(self) -> None:
        """Cancel the waiting timer and any probe in flight (its result is dropped)."""
        self.sync()
        if self._call is not None:
            self.starts.cancel(self._call)
        self._call = None
        self.state = ProberState.IDLE
        inflight, self._inflight = self._inflight, None
        if inflight is not None:
            inflight.cancel()

    def dispose(self) -> None:
        """This prober is dropped for good (stopped, its probe closed, by now): let go of its
        bound callbacks, which refer back to it, so refcounting frees it at once. Otherwise
        only the full collection after a reload would (maglev/gcpolicy.py)."""
        del self._on_result, self._on_landed, self._fire_cb

    def _fire(self) -> None:
        self._call = None
        self.state = ProberState.IDLE
        if not self.health.probing:
            return
        started = self.svc.clock.seconds()
        due = self.scheduled_for if self.scheduled_for is not None else started
        late = started - due
        self.lateness = late if late > 0.0 else 0.0
        self.svc.lateness.count(self.lateness)
        # The next probe is due an interval after this one was due, so the grid's rounding
        # does not stretch every interval; after a stall, an interval after it started.
        self._started = due if late <= self.starts.resolution + STALL else started
        self.probes_sent += 1
        self.state = ProberState.PROBING
        handle = self.probe.start(self._on_result)
        if self.state is ProberState.PROBING and self._inflight is None:  # not answered synchronously
            self._inflight = handle

    def _done(self, result: ProbeResult) -> None:
        """The probe's answer. A cancelled probe never answers (cancel() guarantees it)."""
        if self.state is not ProberState.PROBING:
            return
        started = self._started
        self.state = ProberState.IDLE
        self._inflight = None
        self._count(result_key(result.ok, result.code), 1)
        self.checks += 1
        if not result.ok:
            self.failed_checks += 1
        self.duration_counts[bisect_left(DURATION_BUCKETS, result.duration)] += 1
        self.duration_sum += result.duration
        if self.svc.observers:
            self.svc.observe(ProbeObserved(self.backend.name, self.check_type, result))
        transition = self.health.record(result, self.svc.wallclock())
        if transition is not None:
            self.svc.announce(self, transition)
        if not result.ok:
            self.log.debug(
                "probe {backend} failed: {code} {detail}",
                event="probe",
                backend=self.backend.name,
                code=result.code,
                detail=result.detail,
            )
        elapsed = self.svc.clock.seconds() - started
        delay = max(self.health.next_interval(self.intervals, self.svc.rand) - elapsed, 0.0)
        if self._pilot is not None and self.health.fully_up and not self.svc.observers:
            self._fly(delay)
        else:
            self.schedule(delay)

    # --- counts ---------------------------------------------------------------------------
    def _count(self, key: tuple[bool, str], n: int) -> None:
        if key is self._result_key:  # keys are shared (result_key): the same kind, the same tuple
            self._result_count += n
        elif self._result_key is None:
            self._result_key, self._result_count = key, n
        else:
            other = self._other_results
            if other is None:
                other = self._other_results = {}
            other[key] = other.get(key, 0) + n

    @property
    def results(self) -> dict[tuple[bool, str], int]:
        """Probe results so far by (ok, code): a new dict, the reader's own."""
        first, other = self._result_key, self._other_results
        out = {} if first is None else {first: self._result_count}
        if other:
            for key, n in other.items():
                out[key] = out.get(key, 0) + n
        return out

    # --- autopilot ------------------------------------------------------------------------
    # A fully up backend whose probe has a pilot (a connect check, or a plain HTTP status
    # check) is probed by the engine alone: every passing probe changes nothing, so only
    # its counts are kept, and the first other answer comes back through _landed.
    def _fly(self, delay: float) -> None:
        assert self._pilot is not None
        self.scheduled_for = due = self.svc.clock.seconds() + delay
        self.state = ProberState.AUTOPILOT
        self._inflight = self._pilot.autopilot(
            due, self.intervals.normal, self.starts.resolution, STALL, self._on_landed
        )

    def _landed(self, result: ProbeResult) -> None:
        """The autopilot's first probe that did not pass: back to probing from Python."""
        assert self._pilot is not None
        self.sync()
        self._started = self._pilot.last_base
        self.lateness = self._pilot.last_late
        self.state, self._inflight = ProberState.PROBING, None
        self._done(result)

    def sync(self) -> None:
        """Fold in what the autopilot counted: probes, durations, the last result.

        Safe from any read (a gRPC call, a scrape): it never changes a state nor publishes.
        Only the autopilot counts, and it is folded in before every way off it (``stop``,
        ``_landed``): a backend not on it has nothing to fold, and the engine is not asked."""
        pilot = self._pilot
        if pilot is None or self.state is not _AUTOPILOT:
            return
        # Unpacked once: a read of 10,000 backends on autopilot folds every one of them.
        sent, ok, hits, duration_sum, last_duration, last_time, last_late, next_due, last_status = pilot.stats()
        if sent:
            self.probes_sent += sent
            self.lateness = last_late
        if next_due is not None:
            self.scheduled_for = next_due
        if not ok:
            return
        last = pilot.ok_result(last_duration, last_status)
        self._count(result_key(True, last.code), ok)
        self.checks += ok
        counts = self.duration_counts
        for i, n in hits:
            counts[i] += n
        self.duration_sum += duration_sum
        clock = self.svc.clock
        when = self.svc.wallclock() - (clock.seconds() - last_time)
        # The backend is steadily up: the last success changes nothing else.
        self.health.note_pass(last, when)


class HealthService(Service):
    """Owns every backend's prober and health; operator actions come through here."""

    log = Logger()

    def __init__(
        self,
        config: Config,
        bus: EventBus,
        clock: IReactorTime,
        factory: Callable[[str | None], Any] | None = None,
        rand: Callable[[], float] = random.random,
        wallclock: Callable[[], float] = time.time,
        observers: list[Callable[[ProbeObserved], None]] | None = None,
        timer_resolution: float = TIMER_RESOLUTION,
        start_resolution: float = START_RESOLUTION,
    ) -> None:
        self.setName("health")
        self.config = config
        self.bus = bus
        self.clock = clock
        self.timers = TimerQueue(clock, timer_resolution)  # timeouts, and quick probe starts
        self.coarse_starts = TimerQueue(clock, start_resolution)
        self.rand = rand
        self.wallclock = wallclock
        # The real probes need the whole reactor (sockets too); a test's Clock comes with its own factory.
        reactor = cast("Reactor", clock)
        self.exec_pool = ExecPool(config.healthchecker.exec_concurrency)  # kept across factories (netns changes)
        self._make_factory = factory or (
            lambda netns: ProbeFactory(
                reactor,
                netns,
                timers=self.timers,
                exec_pool=self.exec_pool,
                on_report=self._reported,
            )  # fmt: skip
        )
        self.factory = self._make_factory(config.healthchecker.netns)
        # Probes started from Python, and those of factories gone (a netns change): the
        # current factory's autopilot counts its own (start_lateness).
        self.lateness = StartLateness()
        self.probers: dict[str, BackendProber] = {}
        self._states: dict[str, BackendState] = {}  # kept by _add and announce, read through the view
        self.view = HealthView(self, MappingProxyType(self._states))
        self.observers = list(observers or [])
        for backend in config.backends.values():
            self._add(backend, config)

    # --- lifecycle ------------------------------------------------------------------
    def startService(self) -> None:
        super().startService()
        for prober in self.probers.values():
            self._start(prober)
        self.log.info("health checking {count} backends", event="health-started", count=len(self.probers))

    def stopService(self) -> None:
        super().stopService()
        for prober in self.probers.values():
            prober.stop()
            prober.probe.close()
        self.factory.close()
        self.timers.stop()
        self.coarse_starts.stop()

    def start_lateness(self) -> tuple[tuple[int, ...], float]:
        """How late every probe started (by LATENESS_BUCKETS, and the sum): from Python and
        from the autopilot."""
        return self.lateness.with_(*self.factory.start_lateness())

    def starts_for(self, hc: HealthCheck) -> TimerQueue:
        """Where a backend checked by ``hc`` schedules its probes."""
        if min(hc.interval, hc.fast_interval, hc.down_interval) >= COARSE_MIN_INTERVAL:
            return self.coarse_starts
        return self.timers

    def _start(self, prober: BackendProber) -> None:
        # Spread first probes over the fast interval (unknown backends use it anyway).
        prober.schedule(self.rand() * prober.hc.fast_interval)

    def _add(self, backend: Backend, config: Config) -> BackendProber:
        hc = config.healthchecks[backend.healthcheck]
        health = BackendHealth(
            backend.name,
            hc.rise,
            hc.fall,
            history=config.healthchecker.transition_history,
            enabled=backend.enabled,
            now=self.wallclock(),
        )
        prober = BackendProber(self, backend, hc, health)
        gone = self.probers.get(backend.name)
        if gone is not None:  # a removed backend added back: its old prober goes for good
            gone.dispose()
        self.probers[backend.name] = prober
        self._states[backend.name] = health.state
        return prober

    # --- events ---------------------------------------------------------------------
    def observe(self, seen: ProbeObserved) -> None:
        for observer in self.observers:
            observer(seen)

    def announce(self, prober: BackendProber, t: Transition) -> None:
        name = prober.backend.name
        self._states[name] = t.new
        self.log.info(
            "backend {backend} {old} -> {new} ({code}: {detail})",
            event="backend-transition",
            backend=name,
            old=t.old.value,
            new=t.new.value,
            code=t.code,
            detail=t.detail,
            counter=t.counter,
        )
        self.bus.publish(
            BackendTransition(
                t.time, name, t.old.value, t.new.value, t.code, t.detail, t.counter, prober.health.enabled
            )
        )

    # --- operator actions -------------------------------------------------------------
    def prober(self, name: str) -> BackendProber:
        """The backend's prober, up to date (see BackendProber.sync)."""
        p = self.probers_of([name])[0]
        p.sync()
        return p

    def probers_of(self, names: list[str]) -> list[BackendProber]:
        """These backends' probers as they are (raises NoSuchBackend): for a reader that
        brings each up to date as it reads it."""
        try:
            return [self.probers[n] for n in names]
        except KeyError as e:
            raise NoSuchBackend(e.args[0]) from None

    def pause(self, name: str) -> BackendHealth:
        p = self.prober(name)
        t = p.health.pause(self.wallclock())
        p.stop()
        return self._after(p, t)

    def resume(self, name: str) -> BackendHealth:
        p = self.prober(name)
        t = p.health.resume(self.wallclock())
        if t is not None:
            p.schedule(0.0)
        return self._after(p, t)

    def disable(self, name: str) -> BackendHealth:
        p = self.prober(name)
        t = p.health.disable(self.wallclock())
        p.stop()
        return self._after(p, t)

    def enable(self, name: str) -> BackendHealth:
        p = self.prober(name)
        t = p.health.enable(self.wallclock())
        if t is not None:
            p.schedule(0.0)
        return self._after(p, t)

    def _after(self, p: BackendProber, t: Transition | None) -> BackendHealth:
        if t is not None:
            self.announce(p, t)
        return p.health

    def _reported(self, backend: str, report: Report, said: str) -> None:
        """An exec check's dynamic weight changed: the dataplane applies it."""
        self.log.info(
            "{backend} says {said}: weight {percent}%", event="exec-weight", backend=backend, said=said,
            percent=report.percent,
        )  # fmt: skip
        self.bus.publish(BackendReported(self.wallclock(), backend, "exec", report, said))

    # --- reload ---------------------------------------------------------------------
    def reconfigure(self, new: Config) -> None:
        old, self.config = self.config, new
        now = self.wallclock()
        self.exec_pool.resize(new.healthchecker.exec_concurrency)
        if old.healthchecker.netns != new.healthchecker.netns:
            # A different network view: every probe restarts from unknown.
            for p in self.probers.values():
                p.stop()
            self.factory.close()
            self.lateness.add(*self.factory.start_lateness())
            self.factory = self._make_factory(new.healthchecker.netns)
            for name in list(self.probers):
                if name in new.backends:
                    self._restart(self.probers[name], new, now, f'netns changed to "{new.healthchecker.netns}"')
        for name in list(self.probers):
            if name not in new.backends:
                p = self.probers[name]
                p.stop()
                p.probe.close()
                t = p.health.remove(now)
                if t is not None:
                    self.announce(p, t)
        # Each check a prober holds compared once with its new one, not once a backend: the
        # probers of one check share it (10,000 backends: 20-30 ms a reload). Keyed by id:
        # every check a prober holds was made before this loop, so no two of them share one.
        differs: dict[tuple[int, str], bool] = {}
        resized = old.healthchecker.transition_history != new.healthchecker.transition_history
        for name, backend in new.backends.items():
            p_or_none = self.probers.get(name)
            if p_or_none is None or p_or_none.health.state is State.REMOVED:
                self._start(self._add(backend, new))
                continue
            p = p_or_none
            if resized:
                p.health.resize_history(new.healthchecker.transition_history)
            hc = new.healthchecks[backend.healthcheck]
            old_backend = old.backends.get(name)
            moved = backend.address != p.backend.address
            p.backend = backend
            if moved:
                p.address = str(backend.address)
            key = (id(p.hc), backend.healthcheck)
            if key not in differs:
                differs[key] = hc != p.hc
            if differs[key]:
                p.stop()
                self._restart(p, new, now, f"health check {hc.name} changed")
            elif moved:
                # Probe before trust: what answered at the old address says nothing of the new
                # one, so it starts unknown there (weight 0) until its checks pass.
                p.stop()
                self.bus.publish(BackendChanged(now, name, "address"))
                self._restart(p, new, now, f"address changed to {backend.address}", first=0.0)
            if old_backend is not None and old_backend.enabled != backend.enabled:
                # The file's own `enabled` changed: that is an operator decision too.
                (self.enable if backend.enabled else self.disable)(name)

    def _restart(self, p: BackendProber, config: Config, now: float, why: str, first: float | None = None) -> None:
        """Start over from unknown; the first probe at ``first`` seconds (None: spread)."""
        hc = config.healthchecks[p.backend.healthcheck]
        p.hc = hc
        p.probe.close()
        p.probe = self.factory.probe_for(p.backend, hc, p.address)
        t = p.health.restart(hc.rise, hc.fall, now, why)
        if t is not None:
            self.announce(p, t)
        if first is None:
            self._start(p)
        else:
            p.schedule(first)

    def state_of(self, name: str) -> State:
        return self.prober(name).health.state


__all__ = ["HealthService", "NoSuchBackend", "OperatorError", "ProbeObserved"]
