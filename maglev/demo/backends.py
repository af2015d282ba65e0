"""Demo backends on loopback that an operator can flip up and down.

Each backend is a small HTTP server on its own 127.0.1.x address answering
``/healthz`` with 200 (up) or 503 (down), or not listening at all (stopped).
A control server lists and flips them:

    curl http://127.0.0.1:9099/                 # states
    curl -X POST http://127.0.0.1:9099/web0/down   # 503 from now on
    curl -X POST http://127.0.0.1:9099/web0/stop   # close the listener (TCP checks fail too)
    curl -X POST http://127.0.0.1:9099/web0/up     # listening and healthy again
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.interfaces import IListeningPort, IReactorTCP
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from ..config import Config
from ..log import Logger

STATES = ("up", "down", "stop")


class _Health(Resource):
    isLeaf = True

    def __init__(self, backend: DemoBackend) -> None:
        super().__init__()
        self.backend = backend

    def render_GET(self, request: Request) -> bytes:
        self.backend.requests += 1
        request.setHeader("X-Backend", self.backend.name)
        request.setHeader("Content-Type", "text/plain")
        if self.backend.state == "up":
            return f"{self.backend.name} ok\n".encode()
        request.setResponseCode(503)
        return f"{self.backend.name} down\n".encode()


class DemoBackend:
    def __init__(self, reactor: IReactorTCP, name: str, address: str, port: int, access_log: bool = False) -> None:
        self.reactor = reactor
        self.name = name
        self.address = address
        self.port = port
        self.access_log = access_log
        self.state = "stop"
        self.requests = 0
        self.listening: IListeningPort | None = None

    def set(self, state: str) -> None:
        if state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}")
        if state == "stop":
            if self.listening is not None:
                self.listening.stopListening()
                self.listening = None
        elif self.listening is None:
            site = Site(_Health(self)) if self.access_log else QuietSite(_Health(self))
            site.noisy = False
            self.listening = self.reactor.listenTCP(self.port, site, interface=self.address)  # type: ignore[arg-type]  # Site is typed as another factory
        self.state = state


class _Control(Resource):
    isLeaf = True

    def __init__(self, backends: DemoBackends) -> None:
        super().__init__()
        self.backends = backends

    def render_GET(self, request: Request) -> bytes:
        request.setHeader("Content-Type", "application/json")
        return (json.dumps(self.backends.states(), indent=1) + "\n").encode()

    def render_POST(self, request: Request) -> bytes:
        parts = [p.decode() for p in request.postpath or [] if p]
        request.setHeader("Content-Type", "text/plain")
        if len(parts) != 2 or parts[0] not in self.backends.backends or parts[1] not in STATES:
            request.setResponseCode(400)
            names = ", ".join(self.backends.backends)
            return f"POST /<backend>/<up|down|stop>; backends: {names}\n".encode()
        self.backends.set(parts[0], parts[1])
        return f"{parts[0]} {parts[1]}\n".encode()


class QuietSite(Site):
    """A site without an access log: the health checks' GET /healthz, several a second, were
    nearly all of the demo's log."""

    def log(self, request: Any) -> None:
        pass


class DemoBackends:
    """Starts one HTTP server per backend of the demo config, all healthy."""

    log = Logger()

    def __init__(self, reactor: IReactorTCP, config: Config, port: int = 8080, access_log: bool = False) -> None:
        self.reactor = reactor
        self.backends = {
            name: DemoBackend(reactor, name, str(b.address), port, access_log) for name, b in config.backends.items()
        }
        self.control: IListeningPort | None = None

    def start(self, control_address: str = "127.0.0.1", control_port: int = 9099) -> None:
        for b in self.backends.values():
            b.set("up")
        site = Site(_Control(self))
        site.noisy = False
        self.control = self.reactor.listenTCP(control_port, site, interface=control_address)  # type: ignore[arg-type]
        host: Any = self.control.getHost()
        self.log.info(
            "demo backends up; flip them with curl -X POST http://{host}:{port}/<backend>/<up|down|stop>",
            event="demo-backends",
            host=host.host,
            port=host.port,
            backends=list(self.backends),
        )

    def set(self, name: str, state: str) -> None:
        self.backends[name].set(state)
        self.log.info("demo backend {backend} is now {state}", event="demo-flip", backend=name, state=state)

    def states(self) -> dict[str, str]:
        return {name: b.state for name, b in self.backends.items()}
