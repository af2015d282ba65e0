"""/metrics over real HTTP: the registry's families, then the paged ones a slice at a time,
with the reactor running between slices; both formats parse strictly; a scraper that hangs
up stops the work; a family that breaks cuts the answer, and the next scrape is whole."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import pytest_twisted
import treq
from twisted.internet import defer, protocol
from twisted.internet import reactor as _reactor
from twisted.web.client import ResponseFailed

from maglev.metrics import MaglevMetrics, metrics_site

from .helpers import sample

reactor: Any = _reactor
OPENMETRICS = {"Accept": "application/openmetrics-text; version=1.0.0"}


class Ticker:
    """Counts reactor turns: one callLater(0) after another."""

    def __init__(self) -> None:
        self.turns = 0
        self.call = reactor.callLater(0, self._tick)

    def _tick(self) -> None:
        self.turns += 1
        self.call = reactor.callLater(0, self._tick)

    def stop(self) -> None:
        self.call.cancel()


class Steps:
    """A PagedFamilies of ``count`` series, one a step; notes the turn each step ran in."""

    names: tuple[str, ...] = ("maglev_test_steps",)

    def __init__(self, ticker: Ticker, count: int, broken_at: int | None = None) -> None:
        self.ticker, self.count, self.broken_at = ticker, count, broken_at
        self.turns: list[int] = []
        self.scrapes = 0
        self.ended: defer.Deferred[None] = defer.Deferred()

    def scrape(self, wanted: Callable[[str], bool], openmetrics: bool) -> Iterator[str | None]:
        self.scrapes += 1
        try:
            yield "# HELP maglev_test_steps one series a step\n# TYPE maglev_test_steps gauge\n"
            for i in range(self.count):
                self.turns.append(self.ticker.turns)
                if i == self.broken_at:
                    raise RuntimeError("a broken family")
                yield f'maglev_test_steps{{step="{i}"}} {i}\n'
                yield None
        finally:
            if not self.ended.called:
                self.ended.callback(None)


class Served:
    def __init__(self, steps: Steps, slice_seconds: float) -> None:
        self.metrics = MaglevMetrics()
        self.metrics.paged.append(steps)
        site = metrics_site(self.metrics.registry, self.metrics.paged, reactor, slice_seconds)
        self.port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.url = f"http://127.0.0.1:{self.port.getHost().port}/metrics"

    async def get(self, query: str = "", headers: Any = None) -> tuple[int, str, Any]:
        r = await treq.get(self.url + query, headers=headers)
        return r.code, (await r.content()).decode(), r.headers


@pytest_twisted.async_yield_fixture
async def ticker() -> AsyncIterator[Ticker]:
    t = Ticker()
    yield t
    t.stop()


@pytest_twisted.ensureDeferred
async def test_the_paged_families_follow_the_registrys_with_the_reactor_running_between(ticker: Ticker) -> None:
    steps = Steps(ticker, 50)
    s = Served(steps, 0.0)  # a slice of 0 s: one step a turn
    try:
        code, text, headers = await s.get()
        assert code == 200 and headers.getRawHeaders("content-type")[0].startswith("text/plain")
        assert sample(text, "maglev_config_generation") == 0  # the registry's, in the same answer
        assert [sample(text, "maglev_test_steps", {"step": str(i)}) for i in (0, 49)] == [0, 49]
        # Every step ran in a later reactor turn than the one before it.
        assert all(b > a for a, b in zip(steps.turns, steps.turns[1:], strict=False)), steps.turns

        code, text, headers = await s.get(headers=OPENMETRICS)
        assert headers.getRawHeaders("content-type")[0].startswith("application/openmetrics-text")
        assert text.endswith("# EOF\n") and text.count("# EOF") == 1
        assert sample(text, "maglev_test_steps", {"step": "49"}, openmetrics=True) == 49  # a strict parse
        assert sample(text, "maglev_config_generation", openmetrics=True) == 0
    finally:
        await s.port.stopListening()


@pytest_twisted.ensureDeferred
async def test_a_scrape_of_other_families_never_reads_the_paged_ones(ticker: Ticker) -> None:
    steps = Steps(ticker, 5)
    s = Served(steps, 0.0)
    try:
        code, text, _ = await s.get("?name[]=maglev_config_generation")
        assert code == 200 and sample(text, "maglev_config_generation") == 0
        assert steps.scrapes == 0 and "maglev_test_steps" not in text
        code, text, _ = await s.get("?name[]=maglev_test_steps")
        assert steps.scrapes == 1 and sample(text, "maglev_test_steps", {"step": "4"}) == 4
        assert "maglev_config_generation" not in text
        code, text, _ = await s.get("?name[]=maglev_test_steps_total")  # a series' name finds its family
        assert steps.scrapes == 2 and sample(text, "maglev_test_steps", {"step": "4"}) == 4
    finally:
        await s.port.stopListening()


class HangUp(protocol.Protocol):
    """Asks for /metrics and closes at the first bytes of the answer."""

    transport: Any

    def connectionMade(self) -> None:
        self.transport.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")

    def dataReceived(self, data: bytes) -> None:
        self.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_a_scraper_that_hangs_up_stops_the_work(ticker: Ticker) -> None:
    steps = Steps(ticker, 100_000)  # one a turn: far more than the exchange takes
    s = Served(steps, 0.0)
    try:
        await protocol.ClientCreator(reactor, HangUp).connectTCP("127.0.0.1", s.port.getHost().port)
        await steps.ended.addTimeout(10.0, reactor)  # the generator closed
        assert len(steps.turns) < steps.count  # stopped, not finished
    finally:
        await s.port.stopListening()


@pytest_twisted.ensureDeferred
async def test_a_broken_family_cuts_the_answer_and_the_next_scrape_is_whole(ticker: Ticker) -> None:
    steps = Steps(ticker, 10, broken_at=5)
    s = Served(steps, 0.0)
    try:
        with pytest.raises(ResponseFailed):  # the connection cut before the chunked body's end
            await s.get()
        assert len(steps.turns) == 6  # stopped at the broken step
        steps.broken_at, steps.turns = None, []
        code, text, _ = await s.get()
        assert code == 200 and sample(text, "maglev_test_steps", {"step": "9"}) == 9
    finally:
        await s.port.stopListening()
