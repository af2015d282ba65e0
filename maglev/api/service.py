"""GrpcService: the gRPC server (grpc.aio on the reactor's asyncio loop), with
server reflection (unless --reflection=false) and the standard health service.

The server is created in startService, never before a possible fork.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from twisted.application.service import Service
from twisted.internet.defer import Deferred

from ..addresses import TcpAddress
from ..log import Logger
from .gen.maglev.v1 import maglev_pb2 as pb
from .gen.maglev.v1 import maglev_pb2_grpc as pb_grpc
from .servicer import MaglevServicer

SERVICE = pb.DESCRIPTOR.services_by_name["Maglev"].full_name


class GrpcService(Service):
    log = Logger()

    def __init__(self, address: TcpAddress, servicer: MaglevServicer, reflection_on: bool = True) -> None:
        self.setName("grpc")
        self.address = address
        self.servicer = servicer
        self.reflection_on = reflection_on
        self.server: grpc.aio.Server | None = None
        self.port = 0
        self.health = health.aio.HealthServicer()

    def startService(self) -> None:
        super().startService()
        server = grpc.aio.server()
        pb_grpc.add_MaglevServicer_to_server(self.servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        names = [SERVICE, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name]
        if self.reflection_on:
            reflection.enable_server_reflection([*names, reflection.SERVICE_NAME], server)
        host = self.address.host or "[::]"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        if host == "localhost":
            host = "127.0.0.1"
        self.port = server.add_insecure_port(f"{host}:{self.address.port}")
        if self.port == 0:
            raise RuntimeError(f"gRPC: cannot listen on {self.address}")
        self.server = server
        self.log.info("grpc listening on {address}", event="listening", service="grpc", address=f"{host}:{self.port}")
        asyncio.ensure_future(self._start(server))

    async def _start(self, server: grpc.aio.Server) -> None:
        await server.start()
        await self.health.set(SERVICE, health_pb2.HealthCheckResponse.SERVING)
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)

    def stopService(self) -> Any:
        super().stopService()
        server, self.server = self.server, None
        if server is None:
            return None
        self.servicer.close_streams()  # else stop() waits out the whole grace period
        return Deferred.fromFuture(asyncio.ensure_future(server.stop(1.0)))
