"""StartLateness (pure) and the bench's reading of it: plain tables of cases."""

from __future__ import annotations

import pytest

from bench.probes import quantile
from maglev.health.lateness import LATENESS_BUCKETS, StartLateness


def test_counts_by_bucket_as_bisect_left_then_inf() -> None:
    h = StartLateness()
    for late in (0.0, 0.001, 0.0011, 0.025, 0.0251, 4.9, 5.0, 7.0):
        h.count(late)
    at = LATENESS_BUCKETS.index
    expected = [0] * (len(LATENESS_BUCKETS) + 1)
    expected[0] = 2  # 0 and exactly 1 ms: "le 0.001"
    expected[at(0.005)] = 1
    expected[at(0.025)] = 1
    expected[at(0.03)] = 1
    expected[at(5.0)] = 2
    expected[-1] = 1  # +Inf
    assert h.counts == expected
    assert h.total == pytest.approx(0.0 + 0.001 + 0.0011 + 0.025 + 0.0251 + 4.9 + 5.0 + 7.0)


def test_adding_another_histogram_and_a_value_of_both() -> None:
    h = StartLateness()
    h.count(0.02)
    other = tuple(range(len(LATENESS_BUCKETS) + 1))
    both, total = h.with_(other, 1.5)
    assert both[LATENESS_BUCKETS.index(0.02)] == other[LATENESS_BUCKETS.index(0.02)] + 1
    assert total == pytest.approx(1.52) and h.total == pytest.approx(0.02)  # h unchanged
    h.add(other, 1.5)
    assert (tuple(h.counts), h.total) == (both, total)
    with pytest.raises(ValueError, match="3 buckets"):
        h.add((1, 2, 3), 0.0)


@pytest.mark.parametrize(
    ("q", "counts", "expected"),
    [
        (0.5, [0, 0, 0, 0, 10], 0.0225),  # all in (0.02, 0.025]: the middle of it
        (0.99, [0, 0, 0, 0, 100], 0.02495),
        (0.5, [10, 0, 0, 0, 0], 0.0005),  # the first bucket starts at 0
        (0.5, [], 0.0),
    ],
)
def test_bench_quantiles_interpolate_within_a_bucket(q: float, counts: list[int], expected: float) -> None:
    full = counts + [0] * (len(LATENESS_BUCKETS) + 1 - len(counts)) if counts else []
    assert quantile(q, LATENESS_BUCKETS, full) == pytest.approx(expected)


def test_bench_quantile_in_the_inf_bucket_is_the_highest_bound() -> None:
    counts = [0] * len(LATENESS_BUCKETS) + [5]
    assert quantile(0.5, LATENESS_BUCKETS, counts) == LATENESS_BUCKETS[-1]
