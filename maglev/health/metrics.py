"""Health metrics.

Probe counts and durations are plain integers kept by each prober and turned
into metric families at scrape time (no metric locks on the probe path);
transitions are counted from the bus.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from ..bus import EventBus
from ..events import BackendTransition
from .lateness import LATENESS_BUCKETS
from .probes import DURATION_BUCKETS
from .state import State
from .view import HealthView


class HealthMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.transitions = Counter(
            "maglev_backend_transitions", "backend state transitions", ["backend", "from", "to"], registry=registry
        )

    def watch(self, bus: EventBus) -> None:
        bus.subscribe(BackendTransition, self._transition)

    def _transition(self, t: BackendTransition) -> None:
        self.transitions.labels(t.backend, t.old, t.new).inc()


class HealthCollector(Collector):
    """maglev_probe_total, maglev_probe_duration_seconds, maglev_backend_state/_health/_enabled:
    per backend, so a scrape of 10,000 backends reads them all (seconds: docs/performance.md).
    ``describe`` names them, so a scrape asking for other names (``?name[]=``) skips it."""

    def __init__(self, health: HealthView) -> None:
        self.health = health

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily("maglev_probe", "", labels=[])
        yield HistogramMetricFamily("maglev_probe_duration_seconds", "", labels=[])
        for name in ("maglev_backend_state", "maglev_backend_health", "maglev_backend_enabled"):
            yield GaugeMetricFamily(name, "", labels=[])

    def collect(self) -> Iterator[Metric]:
        probes = CounterMetricFamily(
            "maglev_probe", "probes by backend, type, result and code", labels=["backend", "type", "result", "code"]
        )
        duration = HistogramMetricFamily("maglev_probe_duration_seconds", "probe duration", labels=["backend", "type"])
        state = GaugeMetricFamily(
            "maglev_backend_state", "1 for the backend's current state", labels=["backend", "healthcheck", "state"]
        )
        counter = GaugeMetricFamily(
            "maglev_backend_health", "HAProxy health counter (0..rise+fall-1)", labels=["backend"]
        )
        enabled = GaugeMetricFamily("maglev_backend_enabled", "1 when the backend is enabled", labels=["backend"])
        bounds = [str(b) for b in DURATION_BUCKETS] + ["+Inf"]
        for b in self.health:
            name, kind = b.name, b.check_type
            for (ok, code), n in b.results.items():
                probes.add_metric([name, kind, "success" if ok else "failure", code], n)
            cumulative, buckets = 0, []
            for bound, n in zip(bounds, b.duration_counts, strict=True):
                cumulative += n
                buckets.append((bound, cumulative))
            duration.add_metric([name, kind], buckets, b.duration_sum)
            for s in State:
                state.add_metric([name, b.healthcheck, s.value], 1.0 if b.state is s else 0.0)
            counter.add_metric([name], b.counter)
            enabled.add_metric([name], 1.0 if b.enabled else 0.0)
        yield probes
        yield duration
        yield state
        yield counter
        yield enabled


class LatenessCollector(Collector):
    """maglev_probe_start_lateness_seconds: one histogram for the checker, cheap to scrape
    alone (``/metrics?name[]=maglev_probe_start_lateness_seconds``)."""

    def __init__(self, health: HealthView) -> None:
        self.health = health

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(LATENESS_METRIC, "", labels=[])

    def collect(self) -> Iterator[Metric]:
        lateness = HistogramMetricFamily(
            LATENESS_METRIC, "how late each probe started against when it was due (its start grid's step is by design)"
        )
        counts, total = self.health.start_lateness()
        cumulative, buckets = 0, []
        for bound, n in zip([str(b) for b in LATENESS_BUCKETS] + ["+Inf"], counts, strict=True):
            cumulative += n
            buckets.append((bound, cumulative))
        lateness.add_metric([], buckets, total)
        yield lateness


LATENESS_METRIC = "maglev_probe_start_lateness_seconds"
