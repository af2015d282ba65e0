"""The VPP part of the Maglev servicer (a mixin of MaglevServicer): VPP's info, its lb
state, a sync now, the counters, and the checker-isolation guard's release. Reactor thread,
as the rest of the servicer."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, NoReturn

import grpc
from twisted.internet.defer import Deferred

from ..config import Config
from ..dataplane.errors import NotConnected
from .convert import vpp_lb_state
from .gen.maglev.v1 import maglev_pb2 as pb

if TYPE_CHECKING:
    from ..dataplane.service import LbSync
    from ..dataplane.view import DataplaneView


class VppRpcs:
    lbsync: LbSync
    dataplane: DataplaneView

    @property
    def cfg(self) -> Config:
        raise NotImplementedError

    async def _abort(self, context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
        raise NotImplementedError

    # --- VPP ------------------------------------------------------------------------------
    async def _vpp(self, context: grpc.aio.ServicerContext) -> Any:
        try:
            return self.dataplane.require_connected()
        except NotConnected as e:
            return await self._abort(context, grpc.StatusCode.UNAVAILABLE, str(e))

    async def GetVPPInfo(self, request: pb.GetVPPInfoRequest, context: grpc.aio.ServicerContext) -> pb.VPPInfo:
        info = await self._vpp(context)
        sent, received = self.dataplane.api_traffic()
        return pb.VPPInfo(
            version=info.version, build_date=info.build_date, build_directory=info.build_directory, pid=info.pid,
            boottime_ns=int(info.boottime * 1e9), connecttime_ns=int(info.connected_at * 1e9), weights=info.weights,
            api_mode=info.api_mode, api_sent=sent, api_received=received,
        )  # fmt: skip

    async def GetVPPLBState(self, request: pb.GetVPPLBStateRequest, context: grpc.aio.ServicerContext) -> pb.VPPLBState:
        await self._vpp(context)
        try:
            conf, observed = await awaited(self.lbsync.read_vpp())
        except Exception as e:
            return await self._abort(context, grpc.StatusCode.UNAVAILABLE, f"reading VPP: {e}")
        return vpp_lb_state(conf, observed, self.dataplane.vip_names())

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
        result = await awaited(d)
        changes = sum(1 for op in result.done if type(op).__name__ != "SetConf")
        return pb.SyncVPPLBStateResponse(changes=changes, errors=result.errors)

    async def GetVPPLBCounters(
        self, request: pb.GetVPPLBCountersRequest, context: grpc.aio.ServicerContext
    ) -> pb.VPPLBCounters:
        await self._vpp(context)
        out = pb.VPPLBCounters()
        rates = self.dataplane.counter_rates
        for frontend, c in sorted(self.dataplane.counters.items()):
            r = rates.get(frontend, {})
            out.vips.append(
                pb.VipCounters(
                    frontend=frontend,
                    next=c.get("next", 0),
                    first=c.get("first", 0),
                    untracked=c.get("untracked", 0),
                    no_server=c.get("no-server", 0),
                    next_rate=r.get("next", 0.0),
                    first_rate=r.get("first", 0.0),
                    untracked_rate=r.get("untracked", 0.0),
                    no_server_rate=r.get("no-server", 0.0),
                    has_route="route-packets" in c,
                    route_packets=c.get("route-packets", 0),
                    route_bytes=c.get("route-bytes", 0),
                    route_packets_rate=r.get("route-packets", 0.0),
                    route_bytes_rate=r.get("route-bytes", 0.0),
                )
            )
        return out

    async def ReleaseCheckerIsolation(
        self, request: pb.ReleaseCheckerIsolationRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReleaseCheckerIsolationResponse:
        held = self.lbsync.safety.isolation.release("released by an operator")
        return pb.ReleaseCheckerIsolationResponse(released=held)


async def awaited(d: Deferred[Any]) -> Any:
    """Await a Twisted Deferred from a grpc.aio handler (same loop); the servicer's mixins share it."""
    return await d.asFuture(asyncio.get_running_loop())
