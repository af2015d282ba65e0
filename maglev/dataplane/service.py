"""LbSync: keeps VPP's lb plugin equal to the desired dataplane. Reactor thread.

This file schedules syncs; it never touches vpp_papi. The model (``model.py``, pure)
says what VPP should hold; the worker (``worker.py``) alone talks to VPP, on the one
VPP thread (``link.VppThread``), gets immutable jobs and returns plain results; the
connection is an explicit state machine (``connection.py``) that ``link.VppLink``
drives on the reactor.

Triggers: a backend transition syncs the VIPs that use it; SetWeight syncs its VIP at
once; a reload, an operator request, every ``sync-interval`` and every (re)connect run
a full sync, which re-reads VPP and so repairs drift. Syncs are serialised; requests
arriving meanwhile are merged into the next run. Warm-up: see ``model.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure

from ..bus import EventBus, Subscription
from ..config import Config
from ..events import BackendReported, BackendTransition, LbSynced
from ..log import Logger
from .desired import DesiredVip, IPAddress, VipKey
from .errors import NotConnected
from .link import VppLink, VppThread, every
from .model import DataplaneModel, SyncJob
from .oplog import tell, tell_frontends, tell_unsupported
from .plan import LbConf, ObservedVip
from .rates import CounterRates
from .safety import SafeChanges
from .settling import Settling
from .view import DataplaneView
from .vppclient import VppInfo
from .worker import SyncResult, make_worker

COUNTERS_EVERY = 5.0


@dataclass
class _Request:
    full: bool = False
    frontends: set[str] = field(default_factory=set)
    flush: dict[str, set[IPAddress]] = field(default_factory=dict)
    waiters: list[Deferred[SyncResult]] = field(default_factory=list)

    def merge(self, full: bool, frontends: Iterable[str], flush: Mapping[str, Iterable[IPAddress]] | None) -> None:
        self.full = self.full or full
        self.frontends.update(frontends)
        for fe, addrs in (flush or {}).items():
            self.flush.setdefault(fe, set()).update(addrs)

    @property
    def empty(self) -> bool:
        return not self.full and not self.frontends


def synced(now: float, result: SyncResult, changes: int, complete: bool) -> LbSynced:
    """The event a finished sync publishes (``complete``: a full one after the warm-up)."""
    return LbSynced(now, result.scope, result.frontends, changes, tuple(result.errors), complete)


def answer(waiters: list[Deferred[SyncResult]], result: SyncResult) -> None:
    """Fire every request a run covered with its result (never an error: the result says)."""
    for w in waiters:
        w.callback(result)


class LbSync(Service):
    log = Logger()

    def __init__(
        self,
        config: Config,
        bus: EventBus,
        reactor: IReactorTime,
        backend_states: Mapping[str, str],
        api_addr: str,
        stats_addr: str,
        api_dir: str | None,
        api_counter: Any = None,
        sync_counter: Any = None,
        wallclock: Callable[[], float] = time.time,
    ) -> None:
        self.setName("vpp")
        self.bus = bus
        self.reactor = reactor
        self.enabled = bool(api_addr)
        self.sync_counter = sync_counter
        self.wallclock = wallclock
        self.model = DataplaneModel(config, backend_states)
        self.view = DataplaneView(self, self.model)
        self.thread = VppThread(reactor)
        self.worker = make_worker(api_addr, stats_addr, api_dir, api_counter, self._closed)
        self.link = VppLink(reactor, self.thread, self.worker, bus, self._connected, self._lost, wallclock)
        self.safety = SafeChanges(self.model, reactor, self._full_sync, self._sync_frontends, wallclock)
        self.counters: dict[str, dict[str, int]] = {}  # frontend -> kind -> packets
        self.counter_rates = CounterRates()  # and their packets per second between the last two reads
        self.observed: dict[VipKey, ObservedVip] = {}  # as the VPP thread last handed it over
        self.last_sync: SyncResult | None = None
        self._pending = _Request()
        self._running = False
        self._counters: LoopingCall | None = None
        self._periodic: LoopingCall | None = None
        self._warm_timers: list[IDelayedCall] = []
        self._settling = Settling(reactor, self._settle)  # frontends whose backends changed
        self._subscription: list[Subscription] = []

    @property
    def config(self) -> Config:
        return self.model.config

    @property
    def connected(self) -> bool:
        return self.link.connected

    # --- lifecycle ------------------------------------------------------------------
    def startService(self) -> None:
        super().startService()
        tell_frontends(self.bus, self.wallclock(), self.model.update_frontend_states())
        self._subscription.append(self.bus.subscribe(BackendTransition, self._on_transition))
        self._subscription.append(self.bus.subscribe(BackendReported, self._on_transition))  # a backend's own word
        if not self.enabled:
            self.log.info("VPP integration disabled (empty --vpp-api-addr)", event="vpp-disabled")
            return
        self.thread.start()
        self.safety.start(self.bus)
        lb = self.config.lb
        self.model.start_warmup(self.reactor.seconds())
        if not self.model.warm:
            self._warm_timers = [
                self.reactor.callLater(lb.startup_min_delay, self._release),
                self.reactor.callLater(max(lb.startup_max_delay, lb.startup_min_delay), self._end_warmup),
            ]
        self._periodic = every(self.reactor, lb.sync_interval, self._full_sync, "periodic sync", self.log)
        self.link.start()

    def stopService(self) -> Deferred[None] | None:
        if not self.running:
            return None
        super().stopService()
        for sub in self._subscription:
            sub.cancel()
        self._settling.stop()
        for t in (t for t in self._warm_timers if t.active()):
            t.cancel()
        self.safety.stop()
        for loop in (self._periodic, self._counters):
            if loop is not None and loop.running:
                loop.stop()
        if not self.enabled:
            return None
        self.link.stop()
        # VPP is left exactly as it is: a restart must not disturb the dataplane.
        d: Deferred[None] = self.thread.run(self.worker.close)
        d.addBoth(lambda _: self.thread.stop())
        return d

    # --- the connection (link.py) tells us ----------------------------------------------
    def _connected(self, info: VppInfo) -> None:
        desired = self.model.desired()  # one pass over every backend (10,000: 20-25 ms) for the three below
        self._unsupported(self.model.set_vpp(info.fixed_handlers, desired), desired)
        self._counters = every(self.reactor, COUNTERS_EVERY, self.read_counters, "VPP counters", self.log)
        self.request_sync(full=True, fresh=desired)  # connected, so enabled: it cannot fail

    def _unsupported(self, newly: list[tuple[str, str]], desired: Mapping[str, DesiredVip] | None = None) -> None:
        """Frontends the connected VPP cannot hold: said once, then left out of every sync."""
        tell_unsupported(newly)
        tell_frontends(self.bus, self.wallclock(), self.model.update_frontend_states(desired=desired))

    def _lost(self) -> None:
        self.counters, self.observed = {}, {}
        if self._counters is not None and self._counters.running:
            self._counters.stop()

    def _closed(self, connection: int, why: str, protocol: bool) -> None:  # vpp_papi's thread: VPP closed it
        self.thread.to_reactor(self.link.closed_by_vpp, connection, why, protocol)

    # --- states and triggers -------------------------------------------------------------
    def _on_transition(self, t: BackendTransition | BackendReported) -> None:
        if isinstance(t, BackendReported) and not self.model.reports.set(t.backend, t.source, t.report):
            return  # it said what it had said
        # Bursts (a start brings thousands up): each VIP once a turn, a bounded number a turn
        self._settling.touch(self.config.frontends_using(t.backend))

    def _settle(self, affected: list[str]) -> None:
        if not self.running:
            return
        desired = self.model.desired(affected)
        tell_frontends(self.bus, self.wallclock(), self.model.update_frontend_states(desired=desired))
        self._release()
        if affected and self.enabled:
            # The sync this starts uses these VIPs: nothing can change them meanwhile (0.24 ms a 100-AS VIP)
            self.request_sync(frontends=affected, fresh=desired)

    def reconfigure(self, new: Config) -> None:
        old = self.config
        done = self.model.reconfigure(new, self.reactor.seconds())
        self._unsupported(done.unsupported, done.desired)
        lifted = self.safety.reloaded(*self.model.reload_drains)
        if self._periodic is not None and old.lb.sync_interval != new.lb.sync_interval and self._periodic.running:
            self._periodic.stop()
            self._periodic = every(self.reactor, new.lb.sync_interval, self._full_sync, "periodic sync", self.log)
        if self.enabled:  # the reload's VIPs, unless a suppression it lifted changed them
            self.request_sync(full=True, fresh=None if lifted else done.desired)

    # --- warm-up (model.py decides) ------------------------------------------------------
    def _release(self) -> None:
        newly = self.model.release_ready(self.reactor.seconds())
        if newly:
            self.log.info("warm-up: releasing {frontends}", event="lb-warmup-release", frontends=newly)
            self._sync_later(frontends=newly)

    def _end_warmup(self) -> None:
        if self.model.end_warmup():
            self.log.info("warm-up over: syncing everything", event="lb-warmup-done")
            self._sync_later(full=True)

    # --- operator actions ------------------------------------------------------------------
    def set_weight(
        self, frontend: str, pool: str, backend: str, weight: int | None, flush: bool
    ) -> Deferred[SyncResult]:
        """Set a pool member's weight now (None: the config's again) and sync its VIP."""
        flush_map = self.model.set_weight(frontend, pool, backend, weight, flush)
        tell_frontends(self.bus, self.wallclock(), self.model.update_frontend_states([frontend]))
        return self.request_sync(frontends=[frontend], flush=flush_map)

    def _full_sync(self) -> None:
        self._sync_later(full=True)

    def _sync_frontends(self, frontends: Iterable[str]) -> None:
        tell_frontends(self.bus, self.wallclock(), self.model.update_frontend_states(list(frontends)))
        self._sync_later(frontends=frontends)

    def _sync_later(self, full: bool = False, frontends: Iterable[str] = ()) -> None:
        """A sync of our own accord: without VPP there is nothing to do and nobody to tell."""
        if self.enabled:
            self.request_sync(full=full, frontends=frontends)

    def request_sync(
        self,
        full: bool = False,
        frontends: Iterable[str] = (),
        flush: Mapping[str, Iterable[IPAddress]] | None = None,
        fresh: Mapping[str, DesiredVip] | None = None,
    ) -> Deferred[SyncResult]:
        """Ask for a sync; the Deferred fires with the run that covered it (never fails).

        ``fresh``: desired VIPs just computed for these frontends, used if the run starts now."""
        d: Deferred[SyncResult] = Deferred()
        if not self.enabled:
            d.errback(NotConnected("VPP integration is disabled"))
            return d
        self._pending.merge(full, frontends, flush)
        self._pending.waiters.append(d)
        self._next(fresh or {})
        return d

    # --- the sync itself (its work runs in worker.py, on the VPP thread) -------------------------
    def _next(self, fresh: Mapping[str, DesiredVip] | None = None) -> None:
        if self._running or self._pending.empty or not self.connected:
            return
        if self.model.holding(self.reactor.seconds()):
            self.log.debug("warm-up: VPP writes held back", event="lb-warmup-hold")
            return
        request, self._pending = self._pending, _Request()
        if request.full and not self.model.warm:
            self.log.debug("warm-up: full sync limited to released VIPs", event="lb-warmup-partial")
        job = self.model.job(request.full, request.frontends, request.flush, fresh or {})
        self._running = True
        d = self.thread.run(self.worker.sync, job)
        d.addCallback(self._synced, request, job)
        d.addErrback(self._sync_crashed, request, job.scope)

    def _synced(self, result: SyncResult, request: _Request, job: SyncJob) -> None:
        self._running = False
        self.last_sync = result
        self.observed = {} if result.observed_all else self.observed  # a full read replaces, a VIP sync updates
        self.observed.update(result.observed)
        self.safety.found(self.model.note_observed(result.observed, self.reactor.seconds(), job.desired))
        changes = tell(result, self.sync_counter, self.reactor)
        self.bus.publish(synced(self.wallclock(), result, changes, job.full))
        answer(request.waiters, result)
        if result.io_error is not None:
            self.link.lost(result.io_error)
            self._pending.merge(True, (), None)  # the next connection starts with a full sync anyway
            return
        self._next()

    def _sync_crashed(self, failure: Failure, request: _Request, scope: str) -> None:
        self._running = False
        self.log.failure("LB sync failed", failure)
        result = SyncResult(scope, (), errors=[f"internal error: {failure.getErrorMessage()}"])
        answer(request.waiters, result)
        self._next()

    # --- reads of VPP -----------------------------------------------------------------------------
    def read_counters(self) -> Deferred[None]:
        # The keys come from the config alone: computing every VIP's desired ASes here cost
        # 0.2 s of reactor time every 5 s with 5,000 backends.
        keys = self.model.vip_names()

        def got(counts: dict[VipKey, dict[str, int]]) -> None:
            self.counters = {keys[k]: v for k, v in counts.items() if k in keys}
            self.counter_rates.update(self.reactor.seconds(), self.counters)

        return self.thread.run(self.worker.counters, list(keys)).addCallbacks(got, self.link.failed_call)

    def read_vpp(self) -> Deferred[tuple[LbConf | None, dict[VipKey, ObservedVip]]]:
        """Read VPP's lb state now (on the VPP thread); the result is a private copy."""
        return self.thread.run(self.worker.read)


__all__ = ["LbSync", "NotConnected"]
