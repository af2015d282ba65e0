"""The Maglev gRPC servicer: grpc.aio handlers on Twisted's asyncio reactor.

Handlers run on the reactor thread and read the services only through their
read-only views (no locks, no thread hops); changes go through the services'
own methods. They stay small: find the values, convert (``convert.py``), answer.
WatchEvents is ``streams.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, NoReturn

import grpc

from .. import __version__
from ..bus import EventBus
from ..config import Config, ConfigError, Frontend
from ..configservice import ConfigService
from ..dataplane.service import LbSync
from ..health.service import HealthService, NoSuchBackend
from ..health.state import OperatorError
from ..log import Logger
from ..overrideservice import DurationError, OverrideService
from ..version import commit
from .convert import (
    BackendWire,
    FrontendWire,
    draining_vips,
    fill_backend,
    fill_lifetimes,
    frontend_info,
    healthcheck_info,
    lifetimes_of,
)
from .gen.maglev.v1 import maglev_pb2 as pb
from .gen.maglev.v1 import maglev_pb2_grpc as pb_grpc
from .paging import PageError, page
from .previewrpcs import PreviewRpcs
from .streams import EventStreams
from .vpprpcs import VppRpcs, awaited

# Backends a ListBackends builds and serializes before it lets the reactor run: 1-2 ms
# of work, so a list of 10,000 never holds the probes up for longer than that.
LIST_CHUNK = 100


class MaglevServicer(VppRpcs, PreviewRpcs, pb_grpc.MaglevServicer):
    log = Logger()

    def __init__(
        self,
        config: ConfigService,
        health: HealthService,
        lbsync: LbSync,
        bus: EventBus,
        started: float,
        reactor_thread: Callable[[], bool] | None = None,
        security: tuple[str, tuple[str, ...]] = ("no gRPC listener", ()),
        overrides: OverrideService | None = None,
    ) -> None:
        self.config = config
        self.health = health
        self.lbsync = lbsync
        self.configs = config.view
        self.backends = health.view
        self.dataplane = lbsync.view
        self.bus = bus
        self.started = started
        self.security = security  # (how the API is protected, warnings): GetVersion shows both
        # operator actions and their lifetimes (in memory only when the daemon gives none)
        self.overrides = overrides or OverrideService(health, lbsync, bus, lbsync.reactor)
        self.streams = EventStreams(bus, self._frontend_states, reactor_thread)
        self.subscribers = self.streams.subscribers
        self.wire = BackendWire()
        self.fronts = FrontendWire()  # ListFrontends' cache of each frontend

    # --- helpers --------------------------------------------------------------------
    @property
    def cfg(self) -> Config:
        return self.configs.config

    async def _abort(self, context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
        await context.abort(code, message)
        raise AssertionError("context.abort returned")  # it raises

    def backend_info(self, name: str) -> pb.BackendInfo:
        """Raises NoSuchBackend."""
        info = pb.BackendInfo()
        fill_backend(info, self.backends.backend(name), self.cfg)
        fill_lifetimes([info], self.overrides, self.dataplane)
        return info

    def frontend_info(self, fe: Frontend, desired_all: dict[str, Any] | None = None) -> pb.FrontendInfo:
        """``desired_all``: every frontend's desired VIP, computed once by ListFrontends."""
        desired = (desired_all or self.dataplane.desired([fe.name]))[fe.name]
        return frontend_info(fe, desired, self.dataplane, self.backends.states, self.overrides.weight_seconds_left)

    def _frontend_states(self) -> list[tuple[str, str]]:
        return [(name, self.dataplane.frontend_state(name).value) for name in self.cfg.frontends]

    # --- read-only ----------------------------------------------------------------------
    async def GetVersion(self, request: pb.GetVersionRequest, context: grpc.aio.ServicerContext) -> pb.VersionInfo:
        posture, warnings = self.security
        holding, share, held = self.dataplane.isolation()
        if holding:
            warnings = (*warnings, f"checker-isolation: {share:.0%} of the backends went down at once; the "
                        f"dataplane holds {len(held)} of them as they were (maglevc release isolation)")  # fmt: skip
        return pb.VersionInfo(
            version=__version__, commit=commit(), config_generation=self.configs.generation, started=self.started,
            api_security=posture, warnings=warnings,
        )  # fmt: skip

    async def ListFrontends(
        self, request: pb.ListFrontendsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListFrontendsResponse:
        desired, generation = self.dataplane.desired(), self.configs.generation
        out = pb.ListFrontendsResponse(draining_vips=draining_vips(self.dataplane))
        dataplane, states, left = self.dataplane, self.backends.states, self.overrides.weight_seconds_left
        for fe in self.cfg.frontends.values():
            self.fronts.add(out.frontends, fe, desired[fe.name], dataplane, states, left, generation)
        return out

    async def GetFrontend(self, request: pb.GetFrontendRequest, context: grpc.aio.ServicerContext) -> pb.FrontendInfo:
        fe = self.cfg.frontends.get(request.name)
        if fe is None:
            return await self._abort(context, grpc.StatusCode.NOT_FOUND, f"no such frontend {request.name!r}")
        return self.frontend_info(fe)

    async def ListBackends(self, request: pb.ListBackendsRequest, context: grpc.aio.ServicerContext) -> bytes:
        """A ListBackendsResponse, already serialized (``add_to_server`` sends bytes as they are)."""
        cfg = self.cfg
        members = {n: list(fe.backend_names()) for n, fe in cfg.frontends.items()} if request.frontend else None
        try:
            names, token, total = page(
                self.backends.names(), self.backends.states, members, self.configs.generation,
                request.page_size, request.page_token, request.frontend, list(request.state),
            )  # fmt: skip
        except PageError as e:
            code = {"invalid": grpc.StatusCode.INVALID_ARGUMENT, "not-found": grpc.StatusCode.NOT_FOUND}
            return await self._abort(context, code.get(e.kind, grpc.StatusCode.ABORTED), str(e))
        everyone = len(names) == len(self.backends)  # no page, no filter: in the checker's order
        batches = self.backends.readings(None if everyone else names, LIST_CHUNK)  # else only the page's
        # Serialized a batch at a time (a repeated field's parts concatenate into one message),
        # with the loop let run between batches: no piece of a long list holds the probes.
        parts = [pb.ListBackendsResponse(next_page_token=token, total=total).SerializeToString()]
        wire, generation = self.wire, self.configs.generation
        at = 0
        for batch in batches:
            lifetimes = lifetimes_of(self.overrides, self.dataplane)
            parts.append(wire.part(batch, cfg, generation, lifetimes, at if everyone else None))
            at += len(batch)
            await asyncio.sleep(0)
        return b"".join(parts)

    async def GetBackend(self, request: pb.GetBackendRequest, context: grpc.aio.ServicerContext) -> pb.BackendInfo:
        try:
            return self.backend_info(request.name)
        except NoSuchBackend as e:
            return await self._abort(context, grpc.StatusCode.NOT_FOUND, str(e))

    async def _operator(
        self, action: str, request: pb.BackendRequest, context: grpc.aio.ServicerContext
    ) -> pb.BackendInfo:
        try:
            getattr(self.overrides, action)(request.name, request.for_seconds)
        except NoSuchBackend as e:
            return await self._abort(context, grpc.StatusCode.NOT_FOUND, str(e))
        except OperatorError as e:
            return await self._abort(context, grpc.StatusCode.FAILED_PRECONDITION, str(e))
        except DurationError as e:
            return await self._abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(e))
        return self.backend_info(request.name)

    async def PauseBackend(self, request: pb.BackendRequest, context: grpc.aio.ServicerContext) -> pb.BackendInfo:
        return await self._operator("pause", request, context)

    async def ResumeBackend(self, request: pb.BackendRequest, context: grpc.aio.ServicerContext) -> pb.BackendInfo:
        return await self._operator("resume", request, context)

    async def EnableBackend(self, request: pb.BackendRequest, context: grpc.aio.ServicerContext) -> pb.BackendInfo:
        return await self._operator("enable", request, context)

    async def DisableBackend(self, request: pb.BackendRequest, context: grpc.aio.ServicerContext) -> pb.BackendInfo:
        return await self._operator("disable", request, context)

    async def ListHealthChecks(
        self, request: pb.ListHealthChecksRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListHealthChecksResponse:
        return pb.ListHealthChecksResponse(healthchecks=[healthcheck_info(self.cfg, n) for n in self.cfg.healthchecks])

    async def GetHealthCheck(
        self, request: pb.GetHealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> pb.HealthCheckInfo:
        if request.name not in self.cfg.healthchecks:
            return await self._abort(context, grpc.StatusCode.NOT_FOUND, f"no such health check {request.name!r}")
        return healthcheck_info(self.cfg, request.name)

    # --- changes -----------------------------------------------------------------------
    async def SetFrontendPoolBackendWeight(
        self, request: pb.SetWeightRequest, context: grpc.aio.ServicerContext
    ) -> pb.FrontendInfo:
        if not 0 <= request.weight <= 100:
            return await self._abort(
                context, grpc.StatusCode.INVALID_ARGUMENT, f"weight must be 0..100, got {request.weight}"
            )
        try:
            d = self.overrides.set_weight(
                request.frontend, request.pool, request.backend, request.weight, request.flush, request.for_seconds
            )
        except KeyError as e:
            return await self._abort(context, grpc.StatusCode.NOT_FOUND, str(e.args[0]))
        except DurationError as e:
            return await self._abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(e))
        if self.dataplane.connected:
            result = await awaited(d)
            if result.errors:
                return await self._abort(context, grpc.StatusCode.INTERNAL, "VPP refused: " + "; ".join(result.errors))
        else:
            d.addErrback(lambda f: None)  # applied at the next sync; the answer shows the new weight
        return self.frontend_info(self.cfg.frontends[request.frontend])

    async def CheckConfig(
        self, request: pb.CheckConfigRequest, context: grpc.aio.ServicerContext
    ) -> pb.CheckConfigResponse:
        try:
            await awaited(self.configs.check())
        except ConfigError as e:
            text = "\n".join(str(p) for p in e.problems)
            if e.kind.label == "structural":
                return pb.CheckConfigResponse(ok=False, parse_error=text)
            return pb.CheckConfigResponse(ok=False, semantic_error=text)
        return pb.CheckConfigResponse(ok=True)

    async def ReloadConfig(
        self, request: pb.ReloadConfigRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReloadConfigResponse:
        result = await awaited(self.config.reload())
        text = "\n".join(result.errors)
        return pb.ReloadConfigResponse(
            ok=result.ok,
            generation=result.generation,
            parse_error=text if result.kind == "structural" else "",
            semantic_error=text if result.kind == "semantic" else "",
            apply_error=text if result.kind == "apply" else "",
        )

    # --- events -----------------------------------------------------------------------------
    async def WatchEvents(self, request: pb.WatchRequest, context: grpc.aio.ServicerContext) -> AsyncIterator[pb.Event]:
        async for event in self.streams.watch(request, context):
            yield event

    def close(self) -> None:
        """maglevd is stopping: the streams stop being fed, and end."""
        self.streams.close()

    def close_streams(self) -> None:
        self.streams.end_all()
