"""AgentService: HAProxy's agent-check, beside whatever check a backend has.

A backend with ``agent: {port, interval, timeout}`` is asked every ``interval``: a TCP
connection to its address on that port, from the probes' source address and inside the
checker's network namespace, and the first line it sends (at most 512 bytes, or what it
sent before closing) is its word on itself (health/report.py): ``up``, ``ready``,
``drain``, ``maint``, ``down``, ``75%``. A change is published as a BackendReported; the
dataplane applies it. An agent that cannot be reached, or says nothing usable, changes
nothing (its last word stands, as in HAProxy); the log says so once per new problem.
"""

from __future__ import annotations

import time
from typing import Any

from twisted.application.service import Service
from twisted.internet import error as twisted_error
from twisted.internet.defer import Deferred, TimeoutError
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.python.failure import Failure

from ..bus import EventBus
from ..config import Agent, Backend, Config
from ..events import BackendReported
from ..log import Logger
from .netns import Netns, backend_endpoint
from .probes import source_for
from .report import NEUTRAL, AgentWordError, Report, parse_agent

MAX_LINE = 512
SOURCE = "agent"


class _Line(Protocol):
    def __init__(self, got: Deferred[str]) -> None:
        self.got = got
        self.buffer = b""

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        if b"\n" in self.buffer or len(self.buffer) >= MAX_LINE:
            self._done()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._done()

    def _done(self) -> None:
        if not self.got.called:
            self.got.callback(self.buffer[:MAX_LINE].split(b"\n", 1)[0].decode("utf-8", "replace"))
        transport: Any = self.transport
        if transport is not None:
            transport.loseConnection()


class _AgentPoller:
    """One backend's agent: asks, says what changed, asks again."""

    def __init__(self, svc: AgentService, backend: Backend, agent: Agent, source: str | None) -> None:
        self.svc, self.backend, self.agent = svc, backend, agent
        self.endpoint = backend_endpoint(
            svc.reactor, str(backend.address), agent.port, agent.timeout, source, svc.netns
        )
        self.report: Report = NEUTRAL
        self.said = ""
        self.problem: str | None = None
        self.call: Any = None
        self.asking: Deferred[Any] | None = None

    def start(self) -> None:
        self.call = self.svc.reactor.callLater(0, self.ask)

    def stop(self) -> None:
        if self.call is not None and self.call.active():
            self.call.cancel()
        self.call = None
        asking, self.asking = self.asking, None
        if asking is not None:
            asking.cancel()

    def ask(self) -> None:
        self.call = None
        got: Deferred[str] = Deferred()
        lines: list[_Line] = []

        def build() -> _Line:
            lines.append(_Line(got))
            return lines[-1]

        connecting = self.endpoint.connect(Factory.forProtocol(build))
        connecting.addErrback(lambda f: None if got.called else got.errback(f))
        got.addTimeout(self.agent.timeout, self.svc.reactor)

        def cleanup(result: Any) -> Any:
            connecting.cancel()  # a no-op once connected
            for line in lines:
                transport: Any = line.transport
                if transport is not None:
                    transport.abortConnection()
            return result

        self.asking = got
        got.addBoth(cleanup)
        got.addCallbacks(self._answered, self._failed)
        got.addBoth(self._again)

    def _answered(self, line: str) -> None:
        try:
            report = parse_agent(line)
        except AgentWordError as e:
            self._trouble(str(e))
            return
        self._trouble(None)
        self.said = line.strip()
        if report != self.report:
            self.report = report
            self.svc.publish(self.backend.name, report, self.said)

    def _failed(self, f: Failure) -> None:
        if self.asking is None:
            return  # stopped
        if f.check(twisted_error.ConnectionRefusedError):
            self._trouble("connection refused")
        elif f.check(TimeoutError, twisted_error.TimeoutError, twisted_error.TCPTimedOutError):
            self._trouble(f"no answer within {self.agent.timeout:g}s")
        else:
            self._trouble(f.getErrorMessage())

    def _trouble(self, problem: str | None) -> None:
        if problem == self.problem:
            return
        self.problem = problem
        name, port = self.backend.name, self.agent.port
        if problem is None:
            self.svc.log.info("agent of {backend} answers again", event="agent-ok", backend=name, port=port)
        else:
            self.svc.log.warn(
                "agent of {backend} (port {port}): {problem}; its last word stands ({report})",
                event="agent-problem", backend=name, port=port, problem=problem, report=str(self.report),
            )  # fmt: skip

    def _again(self, _: Any) -> None:
        if self.asking is not None and self.svc.running:
            self.asking = None
            self.call = self.svc.reactor.callLater(self.agent.interval, self.ask)


class AgentService(Service):
    log = Logger()

    def __init__(self, config: Config, bus: EventBus, reactor: Any) -> None:
        self.setName("agents")
        self.config = config
        self.bus = bus
        self.reactor = reactor
        self.netns = Netns(config.healthchecker.netns) if config.healthchecker.netns else None
        self.pollers: dict[str, _AgentPoller] = {}

    def publish(self, backend: str, report: Report, said: str) -> None:
        self.log.info(
            "agent of {backend} says {said!r}: {report}", event="agent-report", backend=backend, said=said,
            report=str(report),
        )  # fmt: skip
        self.bus.publish(BackendReported(time.time(), backend, SOURCE, report, said))

    def _poller(self, backend: Backend) -> _AgentPoller:
        assert backend.agent is not None
        hc = self.config.healthchecks.get(backend.healthcheck)
        src = source_for(str(backend.address), hc) if hc is not None else None  # as its probes
        return _AgentPoller(self, backend, backend.agent, src)

    def startService(self) -> None:
        super().startService()
        for name, b in self.config.backends.items():
            if b.agent is not None:
                self.pollers[name] = p = self._poller(b)
                p.start()

    def stopService(self) -> Any:
        for p in self.pollers.values():
            p.stop()
        self.pollers.clear()
        if self.netns is not None:
            self.netns.close()
        return super().stopService()

    def reconfigure(self, new: Config) -> None:
        """Agents added, changed (address, port, timing, netns) and removed; a removed one's
        word is taken back."""
        old, self.config = self.config, new
        if old.healthchecker.netns != new.healthchecker.netns:
            if self.netns is not None:
                self.netns.close()
            self.netns = Netns(new.healthchecker.netns) if new.healthchecker.netns else None
            changed = set(self.pollers)
        else:
            changed = {n for n, p in self.pollers.items() if new.backends.get(n) != p.backend}
        last: dict[str, Report] = {}
        for name in changed:
            p = self.pollers.pop(name)
            p.stop()
            b = new.backends.get(name)
            if b is not None and b.agent is not None:
                last[name] = p.report  # the new poller knows what the dataplane was told
            elif not p.report.neutral:
                self.bus.publish(BackendReported(time.time(), name, SOURCE, NEUTRAL, "agent removed"))
        if not self.running:
            return
        for name, b in new.backends.items():
            if b.agent is not None and name not in self.pollers:
                self.pollers[name] = p = self._poller(b)
                p.report = last.get(name, NEUTRAL)
                p.start()


__all__ = ["AgentService"]
