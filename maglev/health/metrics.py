"""Health metrics.

Probe counts and durations are plain integers kept by each prober; transitions are
counted from the bus. The per-backend families are written as text at scrape time by
``HealthMetrics.scrape``, a backend at a time, so /metrics can let the reactor run
between backends (a scrape of 10,000 backends writes 230,000 series).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from ..bus import EventBus
from ..events import BackendTransition
from .exposition import FAMILIES, TRANSITIONS, BackendFamilies
from .lateness import LATENESS_BUCKETS
from .probes import DURATION_BUCKETS
from .view import HealthView

TRANSITIONS_PER_PIECE = 100  # (backend, from, to) counts written between two chances for the reactor


class HealthMetrics:
    """maglev_probe_total, maglev_probe_duration_seconds, maglev_backend_state/_health/_enabled
    and maglev_backend_transitions_total: per backend, written by ``scrape``."""

    names = tuple(FAMILIES)

    def __init__(self, health: HealthView) -> None:
        self.health = health
        # (backend, from, to) -> transitions, since the start (as counters are). One flat
        # dict: a dict for each backend was 310 bytes a backend, this is about 100.
        self.transitions: dict[tuple[str, str, str], int] = {}

    def watch(self, bus: EventBus) -> None:
        bus.subscribe(BackendTransition, self._transition)

    def _transition(self, t: BackendTransition) -> None:
        key = (t.backend, t.old, t.new)
        self.transitions[key] = self.transitions.get(key, 0) + 1

    def scrape(self, wanted: Callable[[str], bool], openmetrics: bool) -> Iterator[str | None]:
        """The wanted families' text in pieces, with None after each backend: where the
        caller may let the reactor run before the next."""
        out = BackendFamilies(DURATION_BUCKETS, wanted, openmetrics)
        if any(name != TRANSITIONS for name in out.families):
            for b in self.health:
                out.add(b)
                yield None
        if TRANSITIONS in out.families:
            counts = list(self.transitions.items())
            for at in range(0, len(counts), TRANSITIONS_PER_PIECE):
                out.add_transitions(counts[at : at + TRANSITIONS_PER_PIECE])
                yield None
        yield from out.pieces()

    def text(self, openmetrics: bool = False) -> str:
        """Every family at once, a whole exposition (/metrics writes them a slice at a time)."""
        text = "".join(piece for piece in self.scrape(lambda _: True, openmetrics) if piece is not None)
        return text + "# EOF\n" if openmetrics else text


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
