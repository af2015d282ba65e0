"""The Maglev gRPC servicer: grpc.aio handlers on Twisted's asyncio reactor.

Handlers run on the reactor thread and read the services only through their
read-only views (no locks, no thread hops); changes go through the services'
own methods. They stay small: snapshot, convert, return.
WatchEvents subscribers each get a bounded queue fed from the bus and the log
gate; one that falls behind is ended with RESOURCE_EXHAUSTED instead of
slowing the daemon.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, NoReturn

import grpc
from twisted.internet.defer import Deferred
from twisted.logger import LogLevel

from .. import __version__
from ..bus import EventBus
from ..config import Config, ConfigError, Frontend, HttpParams, IcmpParams, TcpParams
from ..configservice import ConfigService
from ..dataplane.desired import DesiredVip
from ..dataplane.service import LbSync, NotConnected
from ..events import BackendTransition, Event, FrontendTransition, VppConnected, VppDisconnected
from ..health.service import HealthService, NoSuchBackend
from ..health.state import OperatorError
from ..health.view import BackendStatus
from ..log import Logger, event_as_record, gate, parse_level
from ..version import commit
from .gen.maglev.v1 import maglev_pb2 as pb
from .gen.maglev.v1 import maglev_pb2_grpc as pb_grpc

QUEUE_LIMIT = 1000
STOP = object()


def _d(seconds: float | None) -> float:
    return float(seconds or 0.0)


class Subscriber:
    """One WatchEvents stream: a bounded queue, fed on the reactor thread."""

    def __init__(self, request: pb.WatchRequest, loop: asyncio.AbstractEventLoop) -> None:
        self.request = request
        self.loop = loop
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=QUEUE_LIMIT)
        self.overflowed = False
        self.level = parse_level(request.log_level or "info") if request.log else LogLevel.critical

    def offer(self, item: Any) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True
            self.queue._queue.clear()  # type: ignore[attr-defined]  # drop the backlog: the stream ends now
            self.queue.put_nowait(STOP)


class MaglevServicer(pb_grpc.MaglevServicer):
    log = Logger()

    def __init__(
        self,
        config: ConfigService,
        health: HealthService,
        lbsync: LbSync,
        bus: EventBus,
        started: float,
        reactor_thread: Callable[[], bool] | None = None,
    ) -> None:
        self.config = config
        self.health = health
        self.lbsync = lbsync
        self.configs = config.view
        self.backends = health.view
        self.dataplane = lbsync.view
        self.bus = bus
        self.started = started
        self.subscribers: set[Subscriber] = set()
        self._ids = 0
        main = threading.get_ident()
        self._on_reactor = reactor_thread or (lambda: threading.get_ident() == main)
        self._subscriptions = [
            bus.subscribe(BackendTransition, self._backend_event),
            bus.subscribe(FrontendTransition, self._frontend_event),
            bus.subscribe((VppConnected, VppDisconnected), self._vpp_event),
        ]
        self._remove_tap = gate.add_tap(self._log_event)

    # --- helpers --------------------------------------------------------------------
    @property
    def cfg(self) -> Config:
        return self.configs.config

    async def _abort(self, context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
        await context.abort(code, message)
        raise AssertionError("context.abort returned")  # it raises

    def backend_info(self, name: str) -> pb.BackendInfo:
        info = pb.BackendInfo()
        self._fill_backend(info, name)
        return info

    def _fill_backend(self, info: pb.BackendInfo, name: str) -> None:
        """Fill ``info`` in place: ListBackends adds 10,000 of these, and copies cost a third."""
        self._fill_status(info, self.backends.backend(name))

    def _fill_status(self, info: pb.BackendInfo, h: BackendStatus) -> None:
        info.name = h.name
        info.address = h.address
        info.healthcheck = h.healthcheck
        info.enabled = h.enabled
        info.state = h.state.value
        info.counter = h.counter
        info.rise = h.rise
        info.fall = h.fall
        info.state_since = h.since
        info.frontends.extend(self.cfg.frontends_using(h.name))
        info.probe_in_flight = h.in_flight
        if h.last_result is not None:
            r, lp = h.last_result, info.last_probe
            lp.ok, lp.code, lp.detail, lp.duration, lp.time = r.ok, r.code, r.detail, r.duration, _d(h.last_result_time)
        for t in h.history:
            info.transitions.add(**{"from": t.old.value}, to=t.new.value, time=t.time, code=t.code, detail=t.detail)

    def frontend_info(self, fe: Frontend, desired_all: dict[str, Any] | None = None) -> pb.FrontendInfo:
        """``desired_all``: every frontend's desired VIP, computed once by ListFrontends."""
        dataplane = self.dataplane
        desired = (desired_all or dataplane.desired([fe.name]))[fe.name]
        effective = {(a.pool, a.backend): a for a in desired.ases}
        buckets = self._buckets(desired)
        states = self.backends.states
        overrides = dataplane.overrides
        info = pb.FrontendInfo(
            name=fe.name,
            address=str(fe.address),
            protocol=fe.protocol.value,
            port=fe.port,
            encap=desired.encap.value,
            src_ip_sticky=fe.src_ip_sticky,
            flush_on_down=fe.flush_on_down,
            new_flows_table_length=fe.new_flows_table_length,
            description=fe.description,
            state=dataplane.frontend_state(fe.name).value,
        )
        active = dataplane.active_pool(fe.name)
        for i, pool in enumerate(fe.pools):
            pi = pb.PoolInfo(name=pool.name, active=i == active)
            for m in pool.members:
                a = effective[(pool.name, m.backend)]
                pi.backends.append(
                    pb.PoolBackendInfo(
                        name=m.backend,
                        weight=overrides.get((fe.name, pool.name, m.backend), m.weight),
                        effective_weight=a.weight,
                        flush=a.flush,
                        state=states.get(m.backend, "unknown"),
                        address=str(a.address),
                        buckets=buckets.get(str(a.address), -1),
                    )
                )
            info.pools.append(pi)
        return info

    def _buckets(self, desired: DesiredVip) -> dict[str, int]:
        """Buckets per AS as the last sync or read of VPP left them."""
        observed = self.dataplane.observed(desired.key)
        if observed is None:
            return {}
        return {str(a.address): a.buckets for a in observed.ases.values() if a.used and a.buckets is not None}

    # --- read-only ----------------------------------------------------------------------
    async def GetVersion(self, request: pb.GetVersionRequest, context: grpc.aio.ServicerContext) -> pb.VersionInfo:
        return pb.VersionInfo(
            version=__version__, commit=commit(), config_generation=self.configs.generation, started=self.started
        )

    async def ListFrontends(
        self, request: pb.ListFrontendsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListFrontendsResponse:
        desired = self.dataplane.desired()
        return pb.ListFrontendsResponse(
            frontends=[self.frontend_info(fe, desired) for fe in self.cfg.frontends.values()]
        )

    async def GetFrontend(self, request: pb.GetFrontendRequest, context: grpc.aio.ServicerContext) -> pb.FrontendInfo:
        fe = self.cfg.frontends.get(request.name)
        if fe is None:
            return await self._abort(context, grpc.StatusCode.NOT_FOUND, f"no such frontend {request.name!r}")
        return self.frontend_info(fe)

    async def ListBackends(
        self, request: pb.ListBackendsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListBackendsResponse:
        response = pb.ListBackendsResponse()
        for status in self.backends:
            self._fill_status(response.backends.add(), status)
        return response

    async def GetBackend(self, request: pb.GetBackendRequest, context: grpc.aio.ServicerContext) -> pb.BackendInfo:
        try:
            return self.backend_info(request.name)
        except NoSuchBackend as e:
            return await self._abort(context, grpc.StatusCode.NOT_FOUND, str(e))

    async def _operator(
        self, action: str, request: pb.BackendRequest, context: grpc.aio.ServicerContext
    ) -> pb.BackendInfo:
        try:
            getattr(self.health, action)(request.name)
        except NoSuchBackend as e:
            return await self._abort(context, grpc.StatusCode.NOT_FOUND, str(e))
        except OperatorError as e:
            return await self._abort(context, grpc.StatusCode.FAILED_PRECONDITION, str(e))
        return self.backend_info(request.name)

    async def PauseBackend(self, request: pb.BackendRequest, context: grpc.aio.ServicerContext) -> pb.BackendInfo:
        return await self._operator("pause", request, context)

    async def ResumeBackend(self, request: pb.BackendRequest, context: grpc.aio.ServicerContext) -> pb.BackendInfo:
        return await self._operator("resume", request, context)

    async def EnableBackend(self, request: pb.BackendRequest, context: grpc.aio.ServicerContext) -> pb.BackendInfo:
        return await self._operator("enable", request, context)

    async def DisableBackend(self, request: pb.BackendRequest, context: grpc.aio.ServicerContext) -> pb.BackendInfo:
        return await self._operator("disable", request, context)

    def healthcheck_info(self, name: str) -> pb.HealthCheckInfo:
        hc = self.cfg.healthchecks[name]
        params: dict[str, str] = {}
        p = hc.params
        if isinstance(p, HttpParams):
            params = {"path": p.path, "method": p.method, "expect-status": ",".join(str(r) for r in p.expect_status)}
            if p.host:
                params["host"] = p.host
            if p.expect_body:
                params["expect-body"] = p.expect_body
            if hc.type.value == "https":
                params["insecure"] = str(p.insecure).lower()
            params.update({f"header {k}": v for k, v in p.headers})
        elif isinstance(p, TcpParams):
            params = {k: v for k, v in (("send", p.send), ("expect", p.expect)) if v is not None}
        elif isinstance(p, IcmpParams):
            params = {"payload-size": str(p.payload_size)}
        return pb.HealthCheckInfo(
            name=name, type=hc.type.value, port=hc.port or 0, interval=hc.interval, fast_interval=hc.fast_interval,
            down_interval=hc.down_interval, timeout=hc.timeout, rise=hc.rise, fall=hc.fall,
            probe_ipv4_src=str(hc.probe_ipv4_src or ""), probe_ipv6_src=str(hc.probe_ipv6_src or ""), params=params,
            backends=[b for b, be in self.cfg.backends.items() if be.healthcheck == name],
        )  # fmt: skip

    async def ListHealthChecks(
        self, request: pb.ListHealthChecksRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListHealthChecksResponse:
        return pb.ListHealthChecksResponse(healthchecks=[self.healthcheck_info(n) for n in self.cfg.healthchecks])

    async def GetHealthCheck(
        self, request: pb.GetHealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> pb.HealthCheckInfo:
        if request.name not in self.cfg.healthchecks:
            return await self._abort(context, grpc.StatusCode.NOT_FOUND, f"no such health check {request.name!r}")
        return self.healthcheck_info(request.name)

    # --- changes -----------------------------------------------------------------------
    async def SetFrontendPoolBackendWeight(
        self, request: pb.SetWeightRequest, context: grpc.aio.ServicerContext
    ) -> pb.FrontendInfo:
        if not 0 <= request.weight <= 100:
            return await self._abort(
                context, grpc.StatusCode.INVALID_ARGUMENT, f"weight must be 0..100, got {request.weight}"
            )
        try:
            d = self.lbsync.set_weight(request.frontend, request.pool, request.backend, request.weight, request.flush)
        except KeyError as e:
            return await self._abort(context, grpc.StatusCode.NOT_FOUND, str(e.args[0]))
        if self.dataplane.connected:
            result = await _wait(d)
            if result.errors:
                return await self._abort(context, grpc.StatusCode.INTERNAL, "VPP refused: " + "; ".join(result.errors))
        else:
            d.addErrback(lambda f: None)  # applied at the next sync; the answer shows the new weight
        return self.frontend_info(self.cfg.frontends[request.frontend])

    async def CheckConfig(
        self, request: pb.CheckConfigRequest, context: grpc.aio.ServicerContext
    ) -> pb.CheckConfigResponse:
        try:
            await _wait(self.configs.check())
        except ConfigError as e:
            text = "\n".join(str(p) for p in e.problems)
            if e.kind.label == "structural":
                return pb.CheckConfigResponse(ok=False, parse_error=text)
            return pb.CheckConfigResponse(ok=False, semantic_error=text)
        return pb.CheckConfigResponse(ok=True)

    async def ReloadConfig(
        self, request: pb.ReloadConfigRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReloadConfigResponse:
        result = await _wait(self.config.reload())
        text = "\n".join(result.errors)
        return pb.ReloadConfigResponse(
            ok=result.ok,
            generation=result.generation,
            parse_error=text if result.kind == "structural" else "",
            semantic_error=text if result.kind == "semantic" else "",
            apply_error=text if result.kind == "apply" else "",
        )

    # --- VPP ------------------------------------------------------------------------------
    async def _vpp(self, context: grpc.aio.ServicerContext) -> Any:
        try:
            return self.lbsync.require_connected()
        except NotConnected as e:
            return await self._abort(context, grpc.StatusCode.UNAVAILABLE, str(e))

    async def GetVPPInfo(self, request: pb.GetVPPInfoRequest, context: grpc.aio.ServicerContext) -> pb.VPPInfo:
        info = await self._vpp(context)
        return pb.VPPInfo(
            version=info.version, build_date=info.build_date, build_directory=info.build_directory, pid=info.pid,
            boottime_ns=int(info.boottime * 1e9), connecttime_ns=int(info.connected_at * 1e9), weights=info.weights,
            api_mode=info.api_mode,
        )  # fmt: skip

    async def GetVPPLBState(self, request: pb.GetVPPLBStateRequest, context: grpc.aio.ServicerContext) -> pb.VPPLBState:
        await self._vpp(context)
        try:
            conf, observed = await _wait(self.lbsync.read_vpp())
        except Exception as e:
            return await self._abort(context, grpc.StatusCode.UNAVAILABLE, f"reading VPP: {e}")
        names = {d.key: name for name, d in self.dataplane.desired().items()}
        state = pb.VPPLBState()
        if conf is not None:
            state.conf.CopyFrom(
                pb.VPPLBConf(
                    ip4_src_address=conf.ip4,
                    ip6_src_address=conf.ip6,
                    sticky_buckets_per_core=conf.buckets,
                    flow_timeout=conf.timeout,
                )  # fmt: skip
            )
        for key, vip in observed.items():
            v = pb.VPPLBVip(
                frontend=names.get(key, ""), prefix=f"{key.address}/{key.address.max_prefixlen}", protocol=key.protocol,
                port=key.port, encap=vip.encap.value if vip.encap else "", src_ip_sticky=bool(vip.src_ip_sticky),
                new_flows_table_length=vip.table_length or 0,
            )  # fmt: skip
            for a in vip.used():
                v.ases.append(
                    pb.VPPLBAs(
                        address=str(a.address),
                        weight=-1 if a.weight is None else a.weight,
                        buckets=-1 if a.buckets is None else a.buckets,
                    )
                )
            state.vips.append(v)
        return state

    async def SyncVPPLBState(
        self, request: pb.SyncVPPLBStateRequest, context: grpc.aio.ServicerContext
    ) -> pb.SyncVPPLBStateResponse:
        await self._vpp(context)
        if request.frontend and request.frontend not in self.cfg.frontends:
            return await self._abort(context, grpc.StatusCode.NOT_FOUND, f"no such frontend {request.frontend!r}")
        d = (
            self.lbsync.request_sync(full=True)
            if not request.frontend
            else self.lbsync.request_sync(frontends=[request.frontend])
        )
        result = await _wait(d)
        changes = sum(1 for op in result.done if type(op).__name__ != "SetConf")
        return pb.SyncVPPLBStateResponse(changes=changes, errors=result.errors)

    async def GetVPPLBCounters(
        self, request: pb.GetVPPLBCountersRequest, context: grpc.aio.ServicerContext
    ) -> pb.VPPLBCounters:
        await self._vpp(context)
        out = pb.VPPLBCounters()
        for frontend, c in sorted(self.dataplane.counters.items()):
            out.vips.append(
                pb.VipCounters(
                    frontend=frontend,
                    next=c.get("next", 0),
                    first=c.get("first", 0),
                    untracked=c.get("untracked", 0),
                    no_server=c.get("no-server", 0),
                )  # fmt: skip
            )
        return out

    # --- events -----------------------------------------------------------------------------
    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _fan_out(self, want: Callable[[pb.WatchRequest], bool], make: Callable[[], pb.Event]) -> None:
        event: pb.Event | None = None
        for sub in list(self.subscribers):
            if want(sub.request):
                if event is None:
                    event = make()
                sub.offer(event)

    def _backend_event(self, e: BackendTransition) -> None:
        def make() -> pb.Event:
            t = pb.Transition(**{"from": e.old}, to=e.new, time=e.time, code=e.code, detail=e.detail)
            return pb.Event(
                id=self._next_id(),
                time=e.time,
                backend=pb.BackendEvent(backend=e.backend, transition=t, counter=e.counter, enabled=e.enabled),
            )

        self._fan_out(lambda r: r.backend, make)

    def _frontend_event(self, e: FrontendTransition) -> None:
        self._fan_out(
            lambda r: r.frontend,
            lambda: pb.Event(
                id=self._next_id(),
                time=e.time,
                frontend=pb.FrontendEvent(frontend=e.frontend, **{"from": e.old}, to=e.new),
            ),
        )

    def _vpp_event(self, e: Event) -> None:
        if isinstance(e, VppConnected):
            vpp = pb.VppEvent(connected=True, version=e.version)
        elif isinstance(e, VppDisconnected):
            vpp = pb.VppEvent(connected=False, reason=e.reason)
        else:
            return
        self._fan_out(lambda r: r.vpp, lambda: pb.Event(id=self._next_id(), time=e.time, vpp=vpp))

    def _log_event(self, event: dict[str, Any]) -> None:
        if not self.subscribers:
            return
        level = event.get("log_level", LogLevel.info)
        wanted = [s for s in self.subscribers if s.request.log and level >= s.level]
        if not wanted:
            return
        record = event_as_record(event)
        fields = {k: v for k, v in record.items() if k not in ("time", "level", "event", "msg", "logger")}
        log = pb.LogEvent(
            level=str(record.get("level", "")), event=str(record.get("event", "")), message=str(record.get("msg", "")),
            logger=str(record.get("logger", "")), fields_json=json.dumps(fields, default=str),
        )  # fmt: skip
        item = pb.Event(id=self._next_id(), time=float(event.get("log_time", time.time())), log=log)
        for sub in wanted:
            if self._on_reactor():
                sub.offer(item)
            else:  # a log line from another thread: hand it over
                sub.loop.call_soon_threadsafe(sub.offer, item)

    async def WatchEvents(self, request: pb.WatchRequest, context: grpc.aio.ServicerContext) -> AsyncIterator[pb.Event]:
        if request.log_level:
            try:
                parse_level(request.log_level)
            except ValueError as e:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        if not (request.log or request.backend or request.frontend or request.vpp):
            request = pb.WatchRequest(log=False, backend=True, frontend=True, vpp=True)
        sub = Subscriber(request, asyncio.get_running_loop())
        if request.frontend:  # hydrate: the current state of every frontend, old == new
            now = time.time()
            for name in self.cfg.frontends:
                state = self.dataplane.frontend_state(name).value
                sub.offer(
                    pb.Event(
                        id=self._next_id(),
                        time=now,
                        frontend=pb.FrontendEvent(frontend=name, **{"from": state}, to=state),
                    )
                )
        self.subscribers.add(sub)
        try:
            while True:
                item = await sub.queue.get()
                if item is STOP:
                    if sub.overflowed:
                        await context.abort(
                            grpc.StatusCode.RESOURCE_EXHAUSTED,
                            f"subscriber too slow: more than {QUEUE_LIMIT} events queued",
                        )
                    return
                yield item
        finally:
            self.subscribers.discard(sub)

    def close(self) -> None:
        """Stop feeding streams (the daemon is stopping): unsubscribe, remove the log tap, end them."""
        for sub in self._subscriptions:
            sub.cancel()
        self._remove_tap()
        self.close_streams()

    def close_streams(self) -> None:
        for sub in list(self.subscribers):
            sub.queue._queue.clear()  # type: ignore[attr-defined]
            try:
                sub.queue.put_nowait(STOP)
            except asyncio.QueueFull:
                pass


async def _wait(d: Deferred[Any]) -> Any:
    """Await a Twisted Deferred from a grpc.aio handler (same loop)."""
    return await d.asFuture(asyncio.get_running_loop())
