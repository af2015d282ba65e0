"""ListenerService: one server endpoint, bound in privilegedStartService so a
bind error stops the start loudly instead of leaving a half-running daemon."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from twisted.application.service import Service
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IProtocolFactory
from twisted.python.failure import Failure

from .log import Logger

if TYPE_CHECKING:
    from .reactor import Reactor


class ListenError(Exception):
    pass


class ListenerService(Service):
    log = Logger()

    def __init__(
        self, name: str, description: str, factory: IProtocolFactory, reactor: Reactor, umask: int | None = None
    ) -> None:
        self.setName(name)
        self.description = description
        self.factory = factory
        self._reactor = reactor
        self._umask = umask
        self.port: IListeningPort | None = None

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        if self.port is None:
            self._listen()

    def startService(self) -> None:
        if self.port is None:
            self._listen()
        super().startService()

    def _listen(self) -> None:
        results: list[object] = []
        old_umask = os.umask(self._umask) if self._umask is not None else None
        try:
            d = serverFromString(self._reactor, self.description).listen(self.factory)
        finally:
            if old_umask is not None:
                os.umask(old_umask)
        d.addBoth(results.append)
        if not results:
            raise ListenError(f"{self.name}: {self.description} did not bind synchronously")
        result = results[0]
        if isinstance(result, Failure):
            raise ListenError(f"{self.name}: cannot listen on {self.description}: {result.getErrorMessage()}")
        self.port = result  # type: ignore[assignment]
        self.log.info("{service} listening on {address}", event="listening", service=self.name, address=self.address)

    @property
    def address(self) -> str:
        if self.port is None:
            return ""
        host = self.port.getHost()
        if isinstance(host, (IPv4Address, IPv6Address)):
            return f"[{host.host}]:{host.port}" if ":" in host.host else f"{host.host}:{host.port}"
        name = getattr(host, "name", host)
        return name.decode() if isinstance(name, bytes) else str(name)

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        port, self.port = self.port, None
        if port is not None:
            return port.stopListening()
        return None
