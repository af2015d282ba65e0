"""Probing VIPs from the client side, on the Twisted reactor (no thread per VIP).

Plain HTTP without keep-alive and TCP use the lean multiplexed sockets of the
health checker; HTTPS and ``-keepalive`` use twisted.web's Agent. Each VIP is
probed again ``interval`` (±10%) after its previous probe started, never two
at once.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.web.client import Agent, HTTPConnectionPool, readBody
from twisted.web.http_headers import Headers
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

from .. import PROJECT_URL, __version__
from ..config import CheckType, Config, Protocol
from ..health.probes.tcp import TcpMux
from ..health.probes.twisted_tls import InsecureTLS
from ..timers import TimerQueue
from .stats import Board, Outcome

if TYPE_CHECKING:
    from ..reactor import Reactor

USER_AGENT = f"maglevt/{__version__} (+{PROJECT_URL})"


@dataclass(frozen=True)
class Target:
    name: str
    address: str
    port: int
    kind: str  # http, https or tcp

    @property
    def label(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.name} {self.kind}://{host}:{self.port}"


def targets(configs: list[Config], pattern: re.Pattern[str] | None = None) -> list[Target]:
    """TCP frontends of the configs (HTTP(S) when their backends are checked that way)."""
    out: list[Target] = []
    for cfg in configs:
        for name, fe in cfg.frontends.items():
            if fe.protocol is not Protocol.TCP or (pattern is not None and not pattern.search(name)):
                continue
            kinds = {cfg.healthcheck_of(b).type for b in fe.backend_names() if b in cfg.backends}
            kind = "https" if CheckType.HTTPS in kinds else "http" if CheckType.HTTP in kinds else "tcp"
            out.append(Target(name, str(fe.address), fe.port, kind))
    return out


class HttpHead:
    """Duck-types the TCP probe's ``expect`` pattern: done once the headers are in."""

    def __init__(self, header: str | None) -> None:
        self.pattern = "HTTP headers"
        self.header = header.lower().encode() if header else None
        self.status = 0
        self.value: str | None = None

    def search(self, buffer: bytes) -> bool:
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        lines = buffer[:end].split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            self.status = -1
            return True
        self.status = int(parts[1])
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if self.header is not None and name.strip().lower() == self.header:
                self.value = value.strip().decode(errors="replace")
        return True


class VipProber:
    def __init__(
        self,
        reactor: Reactor,
        board: Board,
        targets: list[Target],
        interval: float = 0.1,
        timeout: float = 1.0,
        host: str | None = None,
        uri: str = "/.well-known/ipng/healthz",
        header: str | None = None,
        insecure: bool = True,
        keepalive: bool = False,
        wallclock: Callable[[], float] | None = None,
        rand: Callable[[], float] = random.random,
        limit: int | None = None,
    ) -> None:
        self.reactor = reactor
        self.board = board
        self.targets = targets
        self.interval, self.timeout = interval, timeout
        self.host, self.uri, self.header = host, uri, header
        self.insecure, self.keepalive = insecure, keepalive
        self.now = wallclock or reactor.seconds
        self.rand = rand
        self.limit = limit  # probes per VIP, then stop (-once / -json)
        self.timers = TimerQueue(reactor, 0.002)
        self.mux = TcpMux(reactor, self.timers)
        self.agent = Agent(
            reactor, contextFactory=_Policy(insecure), pool=HTTPConnectionPool(reactor, persistent=keepalive)
        )
        self.running = False
        self.finished: Deferred[None] = Deferred()
        self._left = {t.name: limit for t in targets} if limit is not None else {}
        for t in targets:
            board.vip(t.label)

    def start(self) -> None:
        self.running = True
        for i, t in enumerate(self.targets):
            self.timers.call_later(self.interval * i / max(len(self.targets), 1), self._probe, t)
        if not self.targets:
            self._maybe_finished()

    def stop(self) -> None:
        self.running = False
        self.timers.stop()
        self.mux.close()

    def _probe(self, t: Target) -> None:
        if not self.running:
            return
        started = self.reactor.seconds()
        if t.kind == "tcp":
            self.mux.start(t.address, t.port, self.timeout, lambda r: self._tcp_done(t, started, r))
        elif t.kind == "http" and not self.keepalive:
            head = HttpHead(self.header)
            host = self.host or t.address
            request = (
                f"GET {self.uri} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\nConnection: close\r\n\r\n"
            ).encode()
            self.mux.start(
                t.address, t.port, self.timeout, lambda r: self._http_done(t, started, r, head), send=request,
                expect=head,  # type: ignore[arg-type]
            )  # fmt: skip
        else:
            self._agent_probe(t, started)

    def _tcp_done(self, t: Target, started: float, r: Any) -> None:
        if r.ok:
            self._record(t, started, Outcome(True, r.duration, "connected"))
        else:
            kind = "timeout" if r.code.endswith("TOUT") else "net-err"
            self._record(t, started, Outcome(False, r.duration, r.detail, kind))

    def _http_done(self, t: Target, started: float, r: Any, head: HttpHead) -> None:
        if not r.ok:
            kind = "timeout" if r.code.endswith("TOUT") else "net-err"
            self._record(t, started, Outcome(False, r.duration, r.detail, kind))
        elif head.status < 0:
            self._record(t, started, Outcome(False, r.duration, "not HTTP", "http-err"))
        elif head.status >= 400:
            self._record(t, started, Outcome(False, r.duration, str(head.status), "http-err", head.value))
        else:
            self._record(t, started, Outcome(True, r.duration, str(head.status), "", head.value))

    def _agent_probe(self, t: Target, started: float) -> None:
        host = f"[{t.address}]" if ":" in t.address else t.address
        url = f"{t.kind}://{host}:{t.port}{self.uri}".encode()
        headers = Headers({b"User-Agent": [USER_AGENT.encode()]})
        if self.host:
            headers.setRawHeaders(b"Host", [self.host.encode()])
        d = self.agent.request(b"GET", url, headers)

        def got(response: Any) -> Deferred[Any]:
            value = (
                response.headers.getRawHeaders(self.header)[0]
                if self.header and response.headers.hasHeader(self.header)
                else None
            )
            body = readBody(response)

            def done(_: Any) -> None:
                latency = self.reactor.seconds() - started
                ok = response.code < 400
                self._record(t, started, Outcome(ok, latency, str(response.code), "" if ok else "http-err", value))

            return body.addBoth(done)

        def failed(f: Any) -> None:
            latency = self.reactor.seconds() - started
            timed_out = latency >= self.timeout * 0.99
            self._record(
                t,
                started,
                Outcome(
                    False,
                    latency,
                    "timeout" if timed_out else f.getErrorMessage()[:60],
                    "timeout" if timed_out else "net-err",
                ),
            )

        d.addCallback(got)
        d.addTimeout(self.timeout, self.reactor)
        d.addErrback(failed)

    def _record(self, t: Target, started: float, o: Outcome) -> None:
        self.board.record(t.label, o, self.now())
        if self.limit is not None:
            self._left[t.name] -= 1
            if self._left[t.name] <= 0:
                self._maybe_finished()
                return
        if self.running:
            jitter = 0.9 + 0.2 * self.rand()
            delay = max(self.interval * jitter - (self.reactor.seconds() - started), 0.0)
            self.timers.call_later(delay, self._probe, t)

    def _maybe_finished(self) -> None:
        if all(n <= 0 for n in self._left.values()) and not self.finished.called:
            self.finished.callback(None)


@implementer(IPolicyForHTTPS)
class _Policy:
    """TLS for -https VIPs: SNI from -host; no verification with -insecure (the default)."""

    def __init__(self, insecure: bool) -> None:
        self.insecure = insecure

    def creatorForNetloc(self, hostname: bytes, port: int) -> Any:
        from twisted.internet.ssl import optionsForClientTLS

        name = hostname.decode()
        if self.insecure:
            return InsecureTLS(None if name.replace(".", "").isdigit() or ":" in name else name)
        return optionsForClientTLS(name)
