"""CounterRates: per-second rates between two reads of VPP's counters (a plain table)."""

from __future__ import annotations

import pytest

from maglev.dataplane.rates import CounterRates


@pytest.mark.parametrize(
    "reads, rates",
    [
        ([], {}),
        ([(0.0, {"web": {"next": 10}})], {}),  # one read: no interval yet
        ([(0.0, {"web": {"next": 10}}), (5.0, {"web": {"next": 60}})], {"web": {"next": 10.0}}),
        # a VIP recreated in its slot starts from 0 again: no negative rate
        ([(0.0, {"web": {"next": 100}}), (5.0, {"web": {"next": 20}})], {"web": {"next": 0.0}}),
        # a frontend new since the last read has no rate yet
        ([(0.0, {"a": {"first": 1}}), (2.0, {"a": {"first": 5}, "b": {"first": 9}})],
         {"a": {"first": 2.0}, "b": {"first": 0.0}}),
        # the same time twice (no interval): the last rates stay
        ([(0.0, {"a": {"next": 0}}), (1.0, {"a": {"next": 4}}), (1.0, {"a": {"next": 9}})], {"a": {"next": 4.0}}),
    ],
)  # fmt: skip
def test_rates(reads: list[tuple[float, dict[str, dict[str, int]]]], rates: dict[str, dict[str, float]]) -> None:
    r = CounterRates()
    for now, counts in reads:
        r.update(now, counts)
    assert r.rates == rates
