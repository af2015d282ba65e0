"""Prometheus /metrics: a registry per daemon, served by twisted.web on the reactor.

Rendering on the reactor thread (not prometheus_client's WSGI thread pool) lets
scrape-time collectors read reactor-owned state without locks. The per-backend families
are written a slice at a time (``PagedFamilies``), with the reactor let run between
slices: a scrape of 10,000 backends never holds the probes for more than a slice.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.exposition import choose_encoder
from twisted.application.service import MultiService
from twisted.internet.task import Cooperator, TaskStopped
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from . import __version__
from .addresses import TcpAddress
from .bus import EventBus
from .events import ConfigLoaded, ConfigRejected
from .listener import ListenerService
from .log import Logger
from .version import commit

if TYPE_CHECKING:
    from .reactor import Reactor


class MaglevMetrics:
    """The registry and the metrics every part of the daemon shares."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.paged: list[PagedFamilies] = []  # written after the registry's, a slice at a time
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.build_info = Gauge(
            "maglev_build_info",
            "vpp-maglev build: always 1, the labels say which",
            ["version", "commit", "python"],
            registry=self.registry,
        )
        self.build_info.labels(__version__, commit(), platform.python_version()).set(1)
        self.config_generation = Gauge(
            "maglev_config_generation", "generation of the running configuration (1 at start)", registry=self.registry
        )
        self.config_reloads = Counter(
            "maglev_config_reloads", "configuration reloads by outcome", ["result"], registry=self.registry
        )
        for result in ("ok", "structural", "semantic"):
            self.config_reloads.labels(result)
        self.config_last_success = Gauge(
            "maglev_config_last_reload_success_timestamp_seconds",
            "when the running configuration was loaded",
            registry=self.registry,
        )
        self.config_objects = Gauge(
            "maglev_config_objects", "objects in the running configuration", ["kind"], registry=self.registry
        )

    def watch(self, bus: EventBus) -> None:
        bus.subscribe(ConfigLoaded, self._on_loaded)
        bus.subscribe(ConfigRejected, self._on_rejected)

    def _on_loaded(self, e: ConfigLoaded) -> None:
        if e.generation > 1:
            self.config_reloads.labels("ok").inc()
        self.config_generation.set(e.generation)
        self.config_last_success.set(e.time)
        self.config_objects.labels("frontends").set(e.frontends)
        self.config_objects.labels("backends").set(e.backends)
        self.config_objects.labels("healthchecks").set(e.healthchecks)

    def _on_rejected(self, e: ConfigRejected) -> None:
        self.config_reloads.labels(e.kind).inc()


def series_of(families: list[str]) -> list[str]:
    """A family's name stands for its series too (a histogram's _bucket, _count, _sum), so
    ``?name[]=`` can name families, as /metrics lists them."""
    return [f + suffix for f in families for suffix in ("", "_total", "_created", "_bucket", "_count", "_sum")]


class PagedFamilies(Protocol):
    """Metric families too large to write in one reactor turn (one series set per backend)."""

    names: tuple[str, ...]

    def scrape(self, wanted: Callable[[str], bool], openmetrics: bool) -> Iterator[str | None]:
        """The wanted families' text in pieces; None where the reactor may run first."""
        ...


SCRAPE_SLICE = 0.002
"""Seconds of a scrape's work per reactor turn: probes due meanwhile start at most this late."""


class MetricsResource(Resource):
    """/metrics: the registry's families at once, then the paged ones a slice at a time."""

    isLeaf = True

    def __init__(
        self,
        registry: CollectorRegistry,
        paged: Sequence[PagedFamilies] = (),
        *,
        reactor: Reactor,
        slice_seconds: float = SCRAPE_SLICE,
    ) -> None:
        super().__init__()
        self.registry = registry
        self.paged = paged  # the daemon's list, as it is at each scrape
        self.slice_seconds = slice_seconds
        self.log = Logger()
        self.cooperator = Cooperator(
            terminationPredicateFactory=self._slice, scheduler=lambda work: reactor.callLater(0, work)
        )

    def _slice(self) -> Callable[[], bool]:
        ends = time.monotonic() + self.slice_seconds
        return lambda: time.monotonic() >= ends

    def render_GET(self, request: Request) -> bytes | int:
        accept = request.getHeader("accept") or ""
        encoder, content_type = choose_encoder(accept)
        request.setHeader("Content-Type", content_type)
        # ?name[]=a&name[]=b: only those families, as prometheus_client's own handler does;
        # the others are not even read then (a scrape of all takes a while at 10,000 backends).
        names = [n.decode("utf-8", "replace") for n in (request.args or {}).get(b"name[]", [])]
        series = set(series_of(names))
        registry = self.registry.restricted_registry(sorted(series)) if names else self.registry
        body: bytes = encoder(registry)

        def wanted(family: str) -> bool:  # by its name or any of its series' (maglev_probe_total)
            return not names or any(n in series for n in series_of([family]))

        paged = [p for p in self.paged if any(wanted(n) for n in p.names)]
        if not paged:
            return body
        openmetrics = content_type.startswith("application/openmetrics-text")
        tail = b""
        if openmetrics and body.endswith(b"# EOF\n"):  # the paged families go before the end mark
            body, tail = body[: -len(b"# EOF\n")], b"# EOF\n"
        request.write(body)
        task = self.cooperator.cooperate(self._write(request, paged, wanted, openmetrics))
        gone = request.notifyFinish()
        gone.addErrback(lambda _: task.stop())  # the scraper hung up: stop writing for it
        done = task.whenDone()
        done.addCallback(lambda _: self._finish(request, tail))
        done.addErrback(self._failed, request)
        return NOT_DONE_YET

    @staticmethod
    def _write(
        request: Request, paged: list[PagedFamilies], wanted: Callable[[str], bool], openmetrics: bool
    ) -> Iterator[None]:
        for source in paged:
            for piece in source.scrape(wanted, openmetrics):
                if piece is not None:
                    request.write(piece.encode("utf-8"))
                yield None

    @staticmethod
    def _finish(request: Request, tail: bytes) -> None:
        if tail:
            request.write(tail)
        request.finish()

    def _failed(self, failure: Failure, request: Request) -> None:
        if failure.check(TaskStopped):
            return  # stopped because the scraper is gone: nobody to answer
        self.log.failure("a /metrics scrape failed", failure, event="metrics-scrape-failed")
        request.loseConnection()  # half an answer already went out: a cut one is the honest end


class _Index(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        request.setHeader("Content-Type", "text/plain; charset=utf-8")
        return b"vpp-maglev: metrics are at /metrics\n"


def metrics_site(
    registry: CollectorRegistry, paged: Sequence[PagedFamilies], reactor: Reactor, slice_seconds: float = SCRAPE_SLICE
) -> Site:
    root = Resource()
    root.putChild(b"metrics", MetricsResource(registry, paged, reactor=reactor, slice_seconds=slice_seconds))
    root.putChild(b"", _Index())
    site = Site(root)
    site.displayTracebacks = False
    site.noisy = False
    return site


class MetricsService(MultiService):
    """Serves /metrics when an address is given (an empty --metrics-addr disables it)."""

    def __init__(self, metrics: MaglevMetrics, address: TcpAddress | None, reactor: Reactor) -> None:
        super().__init__()
        self.setName("metrics")
        self.metrics = metrics
        self.listener: ListenerService | None = None
        if address is not None:
            self.listener = ListenerService(
                "metrics-http", address.endpoint(), metrics_site(metrics.registry, metrics.paged, reactor), reactor
            )
            self.listener.setServiceParent(self)
