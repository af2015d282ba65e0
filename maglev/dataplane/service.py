"""LbSync: keeps VPP's lb plugin equal to the desired dataplane.

vpp_papi blocks, so every VPP call runs on one dedicated thread; the reactor
hands it immutable desired-state snapshots and gets plain results back. The
VPP thread owns the VppClient and its cached view of VPP; the reactor owns
everything else (backend states, overrides, warm-up, metrics).

Triggers: a backend transition syncs the VIPs that use it; SetWeight syncs its
VIP at once; a reload, an operator request, every ``sync-interval`` and every
(re)connect run a full sync, which re-reads VPP and so repairs drift. Syncs
are serialised; requests arriving meanwhile are merged into the next run.

Warm-up (restart neutrality): no VPP writes for ``startup-min-delay``; then
each VIP is released once none of its backends is unknown; at
``startup-max-delay`` everything is. Reloads do not restart it.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from ..bus import EventBus
from ..config import Config
from ..events import BackendTransition, FrontendTransition, LbSynced, VppConnected, VppDisconnected
from ..log import Logger
from .desired import UNKNOWN, DesiredVip, IPAddress, VipKey, desired_dataplane, desired_vip, frontend_state, vip_key
from .plan import (
    AddAS,
    AddVip,
    DelAS,
    DelVip,
    LbConf,
    ObservedVip,
    Op,
    SetConf,
    SetWeight,
    apply_to_model,
    conf_op,
    plan,
)
from .vppclient import VppClient, VppError, VppInfo, VppIOError

RECONNECT = 5.0
KEEPALIVE = 10.0
COUNTERS_EVERY = 5.0
BATCH = 512  # changes sent before their replies are collected
KINDS = {
    AddVip: "vip_added",
    DelVip: "vip_removed",
    AddAS: "as_added",
    DelAS: "as_removed",
    SetWeight: "as_weight_updated",
}


class NotConnected(Exception):
    """VPP integration is disabled or VPP is not connected (maps to UNAVAILABLE)."""


@dataclass
class SyncResult:
    scope: str
    frontends: tuple[str, ...]
    done: list[Op] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    recreated: dict[str, str] = field(default_factory=dict)
    io_error: str | None = None


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


class LbSync(Service):
    log = Logger()

    def __init__(
        self,
        config: Config,
        bus: EventBus,
        reactor: Any,
        backend_states: Callable[[], dict[str, str]],
        api_addr: str,
        stats_addr: str,
        api_dir: str | None,
        api_counter: Any = None,
        sync_counter: Any = None,
        wallclock: Callable[[], float] = time.time,
    ) -> None:
        self.setName("vpp")
        self.config = config
        self.bus = bus
        self.reactor = reactor
        self.backend_states = backend_states
        self.api_addr = api_addr
        self.enabled = bool(api_addr)
        self.sync_counter = sync_counter
        self.wallclock = wallclock
        self.client = VppClient(api_addr, stats_addr, api_dir, api_counter)
        self.pool = ThreadPool(1, 1, name="vpp")
        self.states: dict[str, str] = {}
        self.overrides: dict[tuple[str, str, str], int] = {}
        self.frontend_states: dict[str, str] = {}
        self.info: VppInfo | None = None
        self.connected = False
        self.counters: dict[str, dict[str, int]] = {}  # frontend -> kind -> packets
        self.last_sync: SyncResult | None = None
        self._pending = _Request()
        self._running = False
        self._reconnect: Any = None
        self._loops: list[LoopingCall] = []
        self._periodic: LoopingCall | None = None
        self._fresh: dict[str, DesiredVip] = {}  # desired VIPs computed in this very call
        self.started_at = 0.0
        self.released: set[str] = set()
        self.warm = False
        self._warm_timers: list[Any] = []
        self._last_connect_error: str | None = None
        self._touched: set[str] = set()  # frontends whose backends changed this reactor turn
        self._touched_any = False  # a _settle is scheduled

    # --- lifecycle ------------------------------------------------------------------
    def startService(self) -> None:
        super().startService()
        self.states = dict(self.backend_states())
        self._update_frontend_states()
        self.bus.subscribe(BackendTransition, self._on_transition)
        if not self.enabled:
            self.log.info("VPP integration disabled (empty --vpp-api-addr)", event="vpp-disabled")
            return
        self.pool.start()
        self.started_at = self.reactor.seconds()
        lb = self.config.lb
        if lb.startup_min_delay == 0 and lb.startup_max_delay == 0:
            self.warm = True
        else:
            self._warm_timers = [
                self.reactor.callLater(lb.startup_min_delay, self._check_release),
                self.reactor.callLater(max(lb.startup_max_delay, lb.startup_min_delay), self._end_warmup),
            ]
        self._periodic = LoopingCall(self._periodic_sync)
        self._periodic.clock = self.reactor
        self._periodic.start(lb.sync_interval, now=False).addErrback(self._loop_died, "periodic sync")
        self._connect()

    def stopService(self) -> Deferred[None] | None:
        if not self.running:
            return None
        super().stopService()
        for t in self._warm_timers:
            if t.active():
                t.cancel()
        if self._reconnect is not None and self._reconnect.active():
            self._reconnect.cancel()
        for loop in [*self._loops, *([self._periodic] if self._periodic else [])]:
            if loop.running:
                loop.stop()
        self._loops = []
        if not self.enabled:
            return None
        # VPP is left exactly as it is: a restart must not disturb the dataplane.
        d: Deferred[None] = deferToThreadPool(self.reactor, self.pool, self.client.close)
        d.addBoth(lambda _: self.pool.stop())
        return d

    def _loop_died(self, failure: Failure, what: str) -> None:
        self.log.failure("{what} loop stopped", failure, what=what)

    # --- connection -----------------------------------------------------------------
    def _on_thread(self, fn: Callable[..., Any], *args: Any) -> Deferred[Any]:
        return deferToThreadPool(self.reactor, self.pool, fn, *args)

    def _connect(self) -> None:
        self._reconnect = None
        if not self.running:
            return
        self._on_thread(self.client.connect).addCallbacks(self._connected, self._connect_failed)

    def _connect_failed(self, failure: Failure) -> None:
        message = failure.getErrorMessage()
        if message != self._last_connect_error:  # say it once, not every 5 s
            self._last_connect_error = message
            self.log.warn(
                "cannot connect to VPP: {error}; retrying every {every}s",
                event="vpp-connect-failed",
                error=message,
                every=RECONNECT,
            )
        if self.running:
            self._reconnect = self.reactor.callLater(RECONNECT, self._connect)

    def _connected(self, info: VppInfo) -> None:
        self._last_connect_error = None
        self.info, self.connected = info, True
        self.log.info(
            "connected to VPP {version} (pid {pid}), lb API: {mode}",
            event="vpp-connect",
            version=info.version,
            pid=info.pid,
            mode=info.api_mode,
            build_date=info.build_date,
        )
        self.bus.publish(VppConnected(self.wallclock(), info.version, info.pid, info.weights))
        keepalive = LoopingCall(self._keepalive)
        counters = LoopingCall(self._read_counters)
        for loop, every in ((keepalive, KEEPALIVE), (counters, COUNTERS_EVERY)):
            loop.clock = self.reactor
            loop.start(every, now=False).addErrback(self._loop_died, "VPP")
            self._loops.append(loop)
        self._sync_later(full=True)

    def _keepalive(self) -> Deferred[None]:
        return self._on_thread(self.client.ping).addErrback(lambda f: self._lost(f.getErrorMessage()))

    def _lost(self, reason: str) -> None:
        if not self.connected:
            return
        self.connected = False
        self.counters = {}
        for loop in self._loops:
            if loop.running:
                loop.stop()
        self._loops = []
        self.log.warn(
            "lost VPP: {reason}; reconnecting every {every}s", event="vpp-disconnect", reason=reason, every=RECONNECT
        )
        self.bus.publish(VppDisconnected(self.wallclock(), reason))
        self._on_thread(self.client.close)
        if self.running and self._reconnect is None:
            self._reconnect = self.reactor.callLater(RECONNECT, self._connect)

    # --- states and triggers -------------------------------------------------------------
    def desired(self, frontends: Iterable[str] | None = None) -> dict[str, DesiredVip]:
        """The desired VIPs of ``frontends`` (all when None), from current states and overrides."""
        if frontends is None:
            return desired_dataplane(self.config, self.states, self.overrides)
        cfg = self.config
        return {
            n: desired_vip(cfg.frontends[n], cfg, self.states, self.overrides) for n in frontends if n in cfg.frontends
        }

    def _on_transition(self, t: BackendTransition) -> None:
        if t.new == "removed":
            self.states.pop(t.backend, None)
        else:
            self.states[t.backend] = t.new
        affected = self.config.frontends_using(t.backend)
        if not self._touched_any:
            # Transitions arrive in bursts (one timer tick settles many probes; a start brings
            # thousands up): a VIP's state and sync are worked out once per reactor turn, not
            # once per backend (a VIP of 100 backends costs 100x less while they come up).
            self.reactor.callLater(0, self._settle)
        self._touched.update(affected)
        self._touched_any = True

    def _settle(self) -> None:
        affected, self._touched, self._touched_any = sorted(self._touched), set(), False
        if not self.running:
            return
        desired = self.desired(affected)
        self._update_frontend_states(desired=desired)
        if not self.warm:
            self._check_release()
        if affected:
            # Nothing can change the states between here and the sync this starts (if it
            # starts now): it uses these VIPs instead of computing them again (a VIP of 100
            # ASes takes 0.24 ms, on the way from a transition to VPP).
            self._fresh = desired
            try:
                self._sync_later(frontends=affected)
            finally:
                self._fresh = {}

    def _update_frontend_states(
        self, names: Iterable[str] | None = None, desired: dict[str, DesiredVip] | None = None
    ) -> None:
        if desired is None:
            desired = self.desired(names)
        for name in list(desired):
            vip = desired.get(name)
            if vip is None:
                continue
            new = frontend_state(vip, self.states)
            old = self.frontend_states.get(name)
            if old != new:
                self.frontend_states[name] = new
                if old is not None:
                    self.log.info(
                        "frontend {frontend} {old} -> {new}",
                        event="frontend-transition",
                        frontend=name,
                        old=old,
                        new=new,
                    )
                self.bus.publish(FrontendTransition(self.wallclock(), name, old or new, new))

    def _periodic_sync(self) -> None:
        self._sync_later(full=True)

    def reconfigure(self, new: Config) -> None:
        old, self.config = self.config, new
        self.overrides = {k: w for k, w in self.overrides.items() if k[0] in new.frontends}
        for name in [n for n in self.frontend_states if n not in new.frontends]:
            del self.frontend_states[name]
        self.states = {b: s for b, s in self.states.items() if b in new.backends}
        for b in new.backends:
            self.states.setdefault(b, UNKNOWN)
        self._update_frontend_states()
        if self._periodic is not None and old.lb.sync_interval != new.lb.sync_interval and self._periodic.running:
            self._periodic.stop()
            self._periodic.start(new.lb.sync_interval, now=False).addErrback(self._loop_died, "periodic sync")
        if self.enabled:
            self._sync_later(full=True)

    # --- warm-up ---------------------------------------------------------------------
    def _check_release(self) -> None:
        if self.warm or self.reactor.seconds() - self.started_at < self.config.lb.startup_min_delay:
            return
        newly = []
        for name, fe in self.config.frontends.items():
            if name in self.released:
                continue
            if all(self.states.get(b, UNKNOWN) != UNKNOWN for b in fe.backend_names()):
                self.released.add(name)
                newly.append(name)
        if newly:
            self.log.info("warm-up: releasing {frontends}", event="lb-warmup-release", frontends=newly)
            self._sync_later(frontends=newly)

    def _end_warmup(self) -> None:
        if self.warm:
            return
        self.warm = True
        self.log.info("warm-up over: syncing everything", event="lb-warmup-done")
        self._sync_later(full=True)

    def _allowed(self, names: Iterable[str]) -> list[str]:
        if self.warm:
            return list(names)
        return [n for n in names if n in self.released]

    # --- operator actions ------------------------------------------------------------------
    def set_weight(self, frontend: str, pool: str, backend: str, weight: int, flush: bool) -> Deferred[SyncResult]:
        """Set a pool member's weight now (in memory until the next reload) and sync its VIP."""
        fe = self.config.frontends.get(frontend)
        if fe is None:
            raise KeyError(f"no such frontend {frontend!r}")
        p = next((p for p in fe.pools if p.name == pool), None)
        if p is None:
            raise KeyError(f"frontend {frontend!r} has no pool {pool!r}")
        if backend not in p.backend_names:
            raise KeyError(f"pool {pool!r} of frontend {frontend!r} has no backend {backend!r}")
        if not 0 <= weight <= 100:
            raise ValueError(f"weight must be 0..100, got {weight}")
        self.overrides[(frontend, pool, backend)] = weight
        self._update_frontend_states([frontend])
        flush_map = {frontend: {self.config.backends[backend].address}} if flush else None
        return self.request_sync(frontends=[frontend], flush=flush_map)

    def _sync_later(self, full: bool = False, frontends: Iterable[str] = ()) -> None:
        """A sync of our own accord: without VPP there is nothing to do and nobody to tell."""
        if self.enabled:
            self.request_sync(full=full, frontends=frontends)

    def request_sync(
        self,
        full: bool = False,
        frontends: Iterable[str] = (),
        flush: Mapping[str, Iterable[IPAddress]] | None = None,
    ) -> Deferred[SyncResult]:
        """Ask for a sync; the Deferred fires with the run that covered it (never fails)."""
        d: Deferred[SyncResult] = Deferred()
        if not self.enabled:
            d.errback(NotConnected("VPP integration is disabled"))
            return d
        self._pending.merge(full, frontends, flush)
        self._pending.waiters.append(d)
        self._next()
        return d

    # --- the sync itself ----------------------------------------------------------------------
    def _next(self) -> None:
        if self._running or self._pending.empty or not self.connected:
            return
        if not self.warm and self.reactor.seconds() - self.started_at < self.config.lb.startup_min_delay:
            self.log.debug("warm-up: VPP writes held back", event="lb-warmup-hold")
            return
        request, self._pending = self._pending, _Request()
        if request.full:
            desired = self.desired()
        else:
            fresh = {n: vip for n, vip in self._fresh.items() if n in request.frontends}
            desired = {**self.desired(n for n in request.frontends if n not in fresh), **fresh}
        full = request.full and self.warm
        names = self._allowed(desired)
        if request.full and not self.warm:
            self.log.debug("warm-up: full sync limited to released VIPs", event="lb-warmup-partial")
        snapshot = [desired[n] for n in names if n in desired]
        lb = self.config.lb
        conf = LbConf(
            str(lb.ipv4_src_address or "0.0.0.0"),
            str(lb.ipv6_src_address or "::"),
            lb.sticky_buckets_per_core,
            int(lb.flow_timeout),
        )
        scope = "all" if request.full else "vip"
        self._running = True
        d = self._on_thread(self._sync_on_thread, scope, snapshot, full or request.full, full, conf, request.flush)
        d.addCallback(self._synced, request)
        d.addErrback(self._sync_crashed, request, scope)

    def _sync_on_thread(
        self,
        scope: str,
        desired: list[DesiredVip],
        reread: bool,
        full: bool,
        conf: LbConf,
        flush: dict[str, set[IPAddress]],
    ) -> SyncResult:
        """On the VPP thread: read (full syncs), plan, apply."""
        client = self.client
        result = SyncResult(scope, tuple(d.frontend for d in desired))
        try:
            if reread or not client.observed:
                protocols = {(d.key.address, d.key.port): d.key.protocol for d in desired}
                client.read_state(protocols)
                set_conf = conf_op(conf, client.read_conf())
                if set_conf is not None:
                    self._apply(client, set_conf, result)
            ops, result.recreated = plan(desired, client.observed, client.weights, client.applied, full, flush)
            for start in range(0, len(ops), BATCH):
                batch = ops[start : start + BATCH]
                for op, error in zip(batch, client.apply_many(batch), strict=True):
                    if error is not None:
                        result.errors.append(str(error))
                    else:
                        self._record(client, op, result)
        except VppIOError as e:
            result.io_error = str(e)
        return result

    def _apply(self, client: VppClient, op: Op, result: SyncResult) -> bool:
        try:
            client.apply(op)
        except VppError as e:
            result.errors.append(str(e))
            return False
        self._record(client, op, result)
        return True

    @staticmethod
    def _record(client: VppClient, op: Op, result: SyncResult) -> None:
        apply_to_model(client.observed, op, client.weights)
        if isinstance(op, (AddAS, SetWeight)):
            client.applied[(op.key, op.address)] = (op.weight, op.flush)
        result.done.append(op)

    def _synced(self, result: SyncResult, request: _Request) -> None:
        self._running = False
        self.last_sync = result
        for op in result.done:
            self._log_op(op, result.scope)
        for frontend, why in result.recreated.items():
            self.log.info("recreated VIP of {frontend}: {why}", event="lb-sync-recreate", frontend=frontend, why=why)
        for error in result.errors:
            self.log.error("VPP refused: {error}", event="lb-sync-error", error=error)
        if result.errors and self.sync_counter is not None:
            self.sync_counter.labels(result.scope, "error").inc(len(result.errors))
        changes = sum(1 for op in result.done if not isinstance(op, SetConf))
        self.bus.publish(LbSynced(self.wallclock(), result.scope, result.frontends, changes, tuple(result.errors)))
        for w in request.waiters:
            w.callback(result)
        if result.io_error is not None:
            self._lost(result.io_error)
            self._pending.merge(True, (), None)  # the next connection starts with a full sync anyway
            return
        self._next()

    def _sync_crashed(self, failure: Failure, request: _Request, scope: str) -> None:
        self._running = False
        self.log.failure("LB sync failed", failure)
        result = SyncResult(scope, (), errors=[f"internal error: {failure.getErrorMessage()}"])
        for w in request.waiters:
            w.callback(result)
        self._next()

    def _log_op(self, op: Op, scope: str) -> None:
        kind = KINDS.get(type(op))
        if kind is not None and self.sync_counter is not None:
            self.sync_counter.labels(scope, kind).inc()
        if isinstance(op, SetConf):
            c = op.conf
            self.log.info(
                "lb conf: ip4-src {ip4} ip6-src {ip6} timeout {timeout}s",
                event="lb-sync-conf",
                ip4=c.ip4,
                ip6=c.ip6,
                timeout=c.timeout,
            )
        elif isinstance(op, AddVip):
            d = op.vip
            self.log.info(
                "add VIP {vip} ({frontend}) encap {encap}",
                event="lb-sync-vip-add",
                vip=str(d.key),
                frontend=d.frontend,
                encap=d.encap.value,
            )
        elif isinstance(op, DelVip):
            self.log.info("remove VIP {vip}", event="lb-sync-vip-remove", vip=str(op.key))
        elif isinstance(op, AddAS):
            self.log.info(
                "add AS {address} weight {weight} to VIP {vip}",
                event="lb-sync-as-add",
                address=str(op.address),
                weight=op.weight,
                vip=str(op.key),
            )
        elif isinstance(op, DelAS):
            self.log.info(
                "remove AS {address} from VIP {vip} (flush {flush})",
                event="lb-sync-as-remove",
                address=str(op.address),
                vip=str(op.key),
                flush=op.flush,
            )
        elif isinstance(op, SetWeight):
            self.log.info(
                "AS {address} of VIP {vip}: weight {weight} (flush {flush})",
                event="lb-sync-as-weight", address=str(op.address), vip=str(op.key), weight=op.weight, flush=op.flush,
            )  # fmt: skip

    # --- counters -------------------------------------------------------------------------------
    def _read_counters(self) -> Deferred[None]:
        # The keys come from the config alone: computing every VIP's desired ASes here cost
        # 0.2 s of reactor time every 5 s with 5,000 backends.
        keys = {vip_key(fe): name for name, fe in self.config.frontends.items()}

        def got(counts: dict[VipKey, dict[str, int]]) -> None:
            self.counters = {keys[k]: v for k, v in counts.items() if k in keys}

        return self._on_thread(self.client.counters, list(keys)).addCallbacks(
            got, lambda f: self._lost(f.getErrorMessage())
        )

    def read_vpp(self) -> Deferred[tuple[LbConf | None, dict[VipKey, ObservedVip]]]:
        """Read VPP's lb state now (on the VPP thread); the result is a private copy."""
        protocols = {(k.address, k.port): k.protocol for k in map(vip_key, self.config.frontends.values())}

        def read() -> tuple[LbConf | None, dict[VipKey, ObservedVip]]:
            observed = self.client.read_state(protocols)
            return self.client.read_conf(), copy.deepcopy(observed)

        return self._on_thread(read)

    def require_connected(self) -> VppInfo:
        if not self.enabled:
            raise NotConnected("VPP integration is disabled (--vpp-api-addr is empty)")
        if not self.connected or self.info is None:
            raise NotConnected("VPP is not connected")
        return self.info
