"""AgentService against a real agent on loopback: its line becomes the backend's word."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred, TimeoutError
from twisted.internet.protocol import Factory, Protocol

from maglev.bus import EventBus
from maglev.config import load_config
from maglev.events import BackendReported
from maglev.health.agent import AgentService
from maglev.health.report import Report

from .servers import port_of, stop

pytestmark = pytest.mark.slow


def reactor() -> Any:
    from twisted.internet import reactor as r

    return r


class AgentServer:
    """Answers each connection with ``line`` (or nothing, when None)."""

    def __init__(self, line: str | None = "up\n") -> None:
        self.line = line
        self.asked = 0
        server = self

        class Answer(Protocol):
            def connectionMade(self) -> None:
                server.asked += 1
                assert self.transport is not None
                if server.line is not None:
                    self.transport.write(server.line.encode())
                    self.transport.loseConnection()

        self.port = reactor().listenTCP(0, Factory.forProtocol(Answer), interface="127.0.0.1")


def config(port: int, interval: str = "50ms") -> Any:
    return load_config(f"""
maglev:
  healthchecks: {{h: {{type: tcp, port: 80}}}}
  backends:
    a: {{address: 127.0.0.1, healthcheck: h, agent: {{port: {port}, interval: {interval}, timeout: 300ms}}}}
    b: {{address: 127.0.0.1, healthcheck: h}}
""")


WITHOUT_AGENT = """
maglev:
  healthchecks: {h: {type: tcp, port: 80}}
  backends:
    a: {address: 127.0.0.1, healthcheck: h}
"""


def next_report(bus: EventBus, timeout: float = 5.0) -> Deferred[BackendReported]:
    d: Deferred[BackendReported] = Deferred()

    def seen(e: BackendReported) -> None:
        if not d.called:
            sub.cancel()
            d.callback(e)

    sub = bus.subscribe(BackendReported, seen)
    d.addTimeout(timeout, reactor())
    return d


@pytest_twisted.ensureDeferred
async def test_the_agents_line_is_published_when_it_changes() -> None:
    server = AgentServer("drain\n")
    bus = EventBus()
    svc = AgentService(config(port_of(server.port)), bus, reactor())
    try:
        first = next_report(bus)
        svc.startService()
        e = await first
        assert (e.backend, e.source, e.report, e.detail) == ("a", "agent", Report("drain"), "drain")
        asked = server.asked
        server.line = "up 40%\n"
        e = await next_report(bus)
        assert e.report == Report(percent=40) and server.asked > asked
        server.line = "up 40%\n"  # the same word: nothing new is published, it is asked again
        again = server.asked
        later = next_report(bus, timeout=0.5)
        with pytest.raises(TimeoutError):  # no event for the same word
            await later
        assert server.asked > again
    finally:
        svc.stopService()
        await stop(server.port)


@pytest_twisted.ensureDeferred
async def test_an_unreachable_agent_changes_nothing_and_a_reload_takes_its_word_back() -> None:
    server = AgentServer("maint\n")
    bus = EventBus()
    svc = AgentService(config(port_of(server.port)), bus, reactor())
    try:
        first = next_report(bus)
        svc.startService()
        assert (await first).report == Report("maint")
        server.line = None  # connects, says nothing: no word, its last one stands
        quiet = next_report(bus, timeout=0.6)
        with pytest.raises(TimeoutError):
            await quiet
        taken_back = next_report(bus)
        svc.reconfigure(load_config(WITHOUT_AGENT))  # a's agent is gone from the config
        e = await taken_back
        assert (e.backend, e.report, e.detail) == ("a", Report(), "agent removed")
        assert svc.pollers == {}
    finally:
        svc.stopService()
        await stop(server.port)


def test_agent_config_errors() -> None:
    from maglev.config.errors import ConfigError

    base = (
        "maglev:\n  healthchecks: {h: {type: tcp, port: 80}}\n"
        "  backends:\n    a: {address: 192.0.2.1, healthcheck: h, agent: %s}\n"
    )
    with pytest.raises(ConfigError, match="agent.port: required key is missing"):
        load_config(base % "{interval: 2s}")
    with pytest.raises(ConfigError, match="agent.port: must be 1..65535"):
        load_config(base % "{port: 70000}")
    with pytest.raises(ConfigError, match="agent.interval: must be between 10ms and 1h"):
        load_config(base % "{port: 9777, interval: 2h}")
    cfg = load_config(base % "{port: 9777}")
    agent = cfg.backends["a"].agent
    assert agent is not None and (agent.port, agent.interval, agent.timeout) == (9777, 2.0, 1.0)
