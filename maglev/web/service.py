"""WebService: the web UI's listener, its event hub and its data sources."""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, Any

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.web.resource import IResource
from twisted.web.server import Site

from ..addresses import TcpAddress
from ..api.client import ClientAuth
from ..audit import Audit
from ..listener import ListenerService
from ..log import Logger
from .app import Credentials, WebApp
from .broker import EventRing
from .hosts import HostCheck, HostGuard
from .page import environment
from .source import DaemonSource
from .sse import EventHub

if TYPE_CHECKING:
    from ..reactor import Reactor


class WebSite(Site):
    """Access lines at debug, structured: browsers poll, and info is for what operators act on."""

    access = Logger()

    def log(self, request: Any) -> None:
        self.access.debug(
            "{method} {uri} {code}",
            event="web-request",
            method=request.method.decode("ascii", "replace"),
            uri=request.uri.decode("ascii", "replace"),
            code=request.code,
            client=getattr(request.getClientAddress(), "host", ""),
        )


class WebService(MultiService):
    def __init__(self, web: WebApp, address: TcpAddress, reactor: Reactor) -> None:
        super().__init__()
        self.setName("web")
        self.web = web
        site = WebSite(web_resource(web))
        site.displayTracebacks = False
        self.listener = ListenerService("web-http", address.endpoint(), site, reactor)
        self.listener.setServiceParent(self)
        self._warm: asyncio.Future[None] | None = None

    def startService(self) -> None:
        super().startService()
        environment().get_template("page.html")  # compiled now, not on the first visitor's time
        self.web.hub.start()
        for source in self.web.sources.values():
            source.start()
        self._warm = asyncio.ensure_future(self.web.views.warm())

    def stopService(self) -> Any:
        if self._warm is not None:
            self._warm.cancel()
        self.web.hub.stop()  # closes the event streams, so the listener can stop at once
        d = super().stopService()
        stops = asyncio.gather(*(s.stop() for s in self.web.sources.values()))
        return Deferred.fromFuture(asyncio.ensure_future(stops)).addCallback(lambda _: d)


def make_web(
    reactor: IReactorTime,
    credentials: tuple[str, str] | None,
    hosts: HostCheck | None = None,
    audit: Audit | None = None,
) -> WebApp:
    hub = EventHub(EventRing(), reactor)
    return WebApp(hub, Credentials(*credentials) if credentials else None, hosts, audit)


def web_resource(web: WebApp) -> IResource:
    """The app behind its Host check (the DNS-rebinding guard)."""
    return HostGuard(web.app.resource(), web.hosts)


def local_name() -> str:
    return socket.gethostname().split(".")[0] or "local"


def remote_names(addresses: list[str]) -> list[str]:
    """Tab names: the host part of each address, or the whole address where hosts repeat."""
    hosts = [a.rsplit(":", 1)[0].strip("[]") for a in addresses]
    return [h if hosts.count(h) == 1 else a for h, a in zip(hosts, addresses, strict=True)]


def add_remote_sources(web: WebApp, addresses: list[str], auth: dict[str, ClientAuth] | None = None) -> None:
    """``auth``: each address's TLS and token (maglevd-frontend's flags)."""
    for name, address in zip(remote_names(addresses), addresses, strict=True):
        web.add_source(DaemonSource.over_channel(name, address, web.on_event, web.on_status, (auth or {}).get(address)))
