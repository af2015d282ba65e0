"""Health metrics: probe counters and durations as they happen, backend gauges at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..bus import EventBus
from ..events import BackendTransition
from .service import HealthService, ProbeObserved
from .state import State

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class HealthMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.probes = Counter(
            "maglev_probe", "probes by backend, type, result and code", ["backend", "type", "result", "code"],
            registry=registry,
        )  # fmt: skip
        self.duration = Histogram(
            "maglev_probe_duration_seconds", "probe duration", ["backend", "type"], buckets=BUCKETS, registry=registry
        )
        self.transitions = Counter(
            "maglev_backend_transitions", "backend state transitions", ["backend", "from", "to"], registry=registry
        )
        # Label lookups cost more than the increment: cache the children per label set.
        self._probe_children: dict[tuple[str, str, str, str], Any] = {}
        self._duration_children: dict[tuple[str, str], Any] = {}

    def observe(self, seen: ProbeObserved) -> None:
        r = seen.result
        key = (seen.backend, seen.type, "success" if r.ok else "failure", r.code)
        child = self._probe_children.get(key)
        if child is None:
            child = self._probe_children[key] = self.probes.labels(*key)
        child.inc()
        dkey = (seen.backend, seen.type)
        hist = self._duration_children.get(dkey)
        if hist is None:
            hist = self._duration_children[dkey] = self.duration.labels(*dkey)
        hist.observe(r.duration)

    def watch(self, bus: EventBus) -> None:
        bus.subscribe(BackendTransition, self._transition)

    def _transition(self, t: BackendTransition) -> None:
        self.transitions.labels(t.backend, t.old, t.new).inc()


class BackendGauges(Collector):
    """maglev_backend_state (one series per state, 1 for the current one), _health, _enabled."""

    def __init__(self, health: HealthService) -> None:
        self.health = health

    def collect(self) -> Iterator[GaugeMetricFamily]:
        state = GaugeMetricFamily(
            "maglev_backend_state", "1 for the backend's current state", labels=["backend", "healthcheck", "state"]
        )
        counter = GaugeMetricFamily(
            "maglev_backend_health", "HAProxy health counter (0..rise+fall-1)", labels=["backend"]
        )
        enabled = GaugeMetricFamily("maglev_backend_enabled", "1 when the backend is enabled", labels=["backend"])
        for p in list(self.health):
            name = p.backend.name
            for s in State:
                state.add_metric([name, p.hc.name, s.value], 1.0 if p.health.state is s else 0.0)
            counter.add_metric([name], p.health.counter)
            enabled.add_metric([name], 1.0 if p.health.enabled else 0.0)
        yield state
        yield counter
        yield enabled
