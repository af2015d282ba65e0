"""Prometheus /metrics: a registry per daemon, served by twisted.web on the reactor.

Rendering on the reactor thread (not prometheus_client's WSGI thread pool) lets
scrape-time collectors read reactor-owned state without locks.
"""

from __future__ import annotations

import platform
from typing import TYPE_CHECKING

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
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from . import __version__
from .addresses import TcpAddress
from .bus import EventBus
from .events import ConfigLoaded, ConfigRejected
from .listener import ListenerService
from .version import commit

if TYPE_CHECKING:
    from .reactor import Reactor


class MaglevMetrics:
    """The registry and the metrics every part of the daemon shares."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
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


class MetricsResource(Resource):
    isLeaf = True

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self.registry = registry

    def render_GET(self, request: Request) -> bytes:
        accept = request.getHeader("accept") or ""
        encoder, content_type = choose_encoder(accept)
        request.setHeader("Content-Type", content_type)
        # ?name[]=a&name[]=b: only those families, as prometheus_client's own handler does;
        # the per-backend ones are not even read then (a scrape of all takes seconds at 10,000).
        names = [n.decode("utf-8", "replace") for n in (request.args or {}).get(b"name[]", [])]
        registry = self.registry.restricted_registry(series_of(names)) if names else self.registry
        body: bytes = encoder(registry)
        return body


class _Index(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        request.setHeader("Content-Type", "text/plain; charset=utf-8")
        return b"vpp-maglev: metrics are at /metrics\n"


def metrics_site(registry: CollectorRegistry) -> Site:
    root = Resource()
    root.putChild(b"metrics", MetricsResource(registry))
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
            self.listener = ListenerService("metrics-http", address.endpoint(), metrics_site(metrics.registry), reactor)
            self.listener.setServiceParent(self)
