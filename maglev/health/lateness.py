"""How late probes started against when they were due: one histogram for the checker.

A probe is due at its scheduled time and starts on the next step of its start grid
(docs/healthchecks.md), so up to that step is by design; more means the reactor was
busy. The prober counts the probes it starts and the compiled engine those its
autopilot starts; both are cumulative, for a metric's counters. Plain logic.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

# Seconds. The start grid is 25 ms (5 ms for sub-second intervals): the first buckets
# show it, the rest show a checker that falls behind.
LATENESS_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class StartLateness:
    """Counts by LATENESS_BUCKETS (as bisect_left, then +Inf) and their sum."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENESS_BUCKETS) + 1)
        self.total = 0.0

    def count(self, late: float) -> None:
        self.counts[bisect_left(LATENESS_BUCKETS, late)] += 1
        self.total += late

    def add(self, counts: Sequence[int], total: float) -> None:
        """Another histogram over the same buckets (the engine's)."""
        if len(counts) != len(self.counts):
            raise ValueError(f"{len(counts)} buckets, not {len(self.counts)}")
        for i, n in enumerate(counts):
            self.counts[i] += n
        self.total += total

    def with_(self, counts: Sequence[int], total: float) -> tuple[tuple[int, ...], float]:
        """This one and another, added, as a value (neither changes)."""
        both = StartLateness()
        both.add(self.counts, self.total)
        both.add(counts, total)
        return tuple(both.counts), both.total


__all__ = ["LATENESS_BUCKETS", "StartLateness"]
