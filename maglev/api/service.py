"""GrpcService: the gRPC server (grpc.aio on the reactor's asyncio loop), with
server reflection (unless --reflection=false), the standard health service, TLS
(optionally mutual) and the Guard that decides who may call what.

The server is created in startService, never before a possible fork. The port is
bound without SO_REUSEPORT (grpcio's default turns it on), so a second maglevd on
the same port fails to start instead of silently taking half the clients. Every
reload (SIGHUP, ReloadConfig, the web admin) also re-reads the tokens file and the
certificates; a bad one is logged and the running one stays.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from twisted.application.service import Service
from twisted.internet.defer import Deferred

from ..addresses import TcpAddress
from ..audit import Audit
from ..bus import EventBus, Subscription
from ..config import ConfigError
from ..events import ReloadStarted
from ..listener import ListenError
from ..log import Logger
from .gen.maglev.v1 import maglev_pb2 as pb
from .guard import Guard, TokensFile
from .servicer import MaglevServicer
from .tls import ServerTls, TlsError
from .wire import add_to_server

SERVICE = pb.DESCRIPTOR.services_by_name["Maglev"].full_name


def security_posture(address: TcpAddress, tls: ServerTls | None, tokens: TokensFile) -> tuple[str, tuple[str, ...]]:
    """(a one-line description of how the API is protected, the warnings an operator must see)."""
    transport = "plaintext" if tls is None else ("TLS, client certificates required" if tls.mtls else "TLS")
    access = (
        "tokens file " + tokens.path
        if tokens.policy is not None
        else "no tokens file: reads open, changes from loopback only"
    )
    warnings: tuple[str, ...] = ()
    if tls is None and not address.is_loopback:
        warnings = (
            f"grpc-insecure: the gRPC API listens on {address} without TLS: anyone who can reach it can read "
            "it, and tokens cross the network in clear (set --grpc-tls-cert and --grpc-tls-key)",
        )
    return f"{transport}; {access}", warnings


class GrpcService(Service):
    log = Logger()

    def __init__(
        self,
        address: TcpAddress,
        servicer: MaglevServicer,
        reflection_on: bool = True,
        tls: ServerTls | None = None,
        tokens: TokensFile | None = None,
        audit: Audit | None = None,
        bus: EventBus | None = None,
    ) -> None:
        self.setName("grpc")
        self.address = address
        self.servicer = servicer
        self.reflection_on = reflection_on
        self.tls = tls
        self.tokens = tokens or TokensFile()
        self.guard = Guard(self.tokens, audit or Audit())
        self.bus = bus
        self.server: grpc.aio.Server | None = None
        self.port = 0
        self.health = health.aio.HealthServicer()
        self._reloads: Subscription | None = None

    def _host(self) -> str:
        host = self.address.host or "[::]"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return "127.0.0.1" if host == "localhost" else host

    def startService(self) -> None:
        server = grpc.aio.server(interceptors=[self.guard], options=[("grpc.so_reuseport", 0)])
        add_to_server(self.servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        names = [SERVICE, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name]
        if self.reflection_on:
            reflection.enable_server_reflection([*names, reflection.SERVICE_NAME], server)
        host = self._host()
        where = f"{host}:{self.address.port}"
        try:
            if self.tls is None:
                self.port = server.add_insecure_port(where)
            else:
                self.port = server.add_secure_port(where, self.tls.credentials())
        except RuntimeError:  # grpcio >= 1.5x raises where older ones returned 0
            self.port = 0
        if self.port == 0:
            raise ListenError(f"grpc: cannot listen on {self.address}: {_bind_error(host, self.address.port)}")
        super().startService()
        self.server = server
        posture, warnings = security_posture(self.address, self.tls, self.tokens)
        self.log.info(
            "grpc listening on {address} ({security})",
            event="listening",
            service="grpc",
            address=f"{host}:{self.port}",
            security=posture,
            tls=self.tls.material.describe() if self.tls else None,
            tokens=self.tokens.policy.describe() if self.tokens.policy else None,
        )
        for warning in warnings:
            self.log.warn("{warning}", event="grpc-insecure", warning=warning, address=str(self.address))
        if self.bus is not None:
            self._reloads = self.bus.subscribe(ReloadStarted, self._reread)
        asyncio.ensure_future(self._start(server))

    async def _start(self, server: grpc.aio.Server) -> None:
        await server.start()
        await self.health.set(SERVICE, health_pb2.HealthCheckResponse.SERVING)
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)

    def _reread(self, event: ReloadStarted) -> None:
        try:
            if self.tokens.reread():
                assert self.tokens.policy is not None
                self.log.info(
                    "grpc tokens file {path} re-read",
                    event="grpc-tokens-reloaded",
                    path=self.tokens.path,
                    **self.tokens.policy.describe(),
                )
        except ConfigError as e:
            self.log.error(
                "grpc tokens file {path} refused, the running one stays: {errors}",
                event="grpc-tokens-reload-rejected",
                path=self.tokens.path,
                errors=[str(p) for p in e.problems],
            )
        if self.tls is None:
            return
        try:
            if self.tls.reread():
                self.log.info(
                    "grpc certificate rotated: new connections get {subject}",
                    event="grpc-tls-reloaded",
                    **self.tls.material.describe(),
                )
        except TlsError as e:
            self.log.error(
                "grpc certificate files refused, the running certificate stays: {error}",
                event="grpc-tls-reload-rejected",
                error=str(e),
            )

    def stopService(self) -> Any:
        super().stopService()
        if self._reloads is not None:
            self._reloads.cancel()
            self._reloads = None
        server, self.server = self.server, None
        if server is None:
            return None
        self.servicer.close_streams()  # else stop() waits out the whole grace period
        return Deferred.fromFuture(asyncio.ensure_future(server.stop(1.0)))


def _bind_error(host: str, port: int) -> str:
    """Why grpc could not bind (it only logs the reason): try the same bind ourselves."""
    bare = host.strip("[]")
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((bare, port))
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            return "address in use"
        return e.strerror or str(e)
    return "grpc refused the address"
