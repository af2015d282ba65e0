"""maglev.exposition and maglev.health.exposition: families written as text, read back by
prometheus_client's own parsers (the text format, and OpenMetrics strictly)."""

from __future__ import annotations

from typing import Any

import pytest

from maglev.exposition import label_value, number
from maglev.health.exposition import FAMILIES, BackendFamilies
from maglev.health.probes import DURATION_BUCKETS
from maglev.health.view import BackendStatus
from maglev.states import BackendState

from .helpers import sample


def status(name: str = "web0", **changes: Any) -> BackendStatus:
    fields: dict[str, Any] = dict(
        name=name, address="192.0.2.10", healthcheck="http", check_type="http", enabled=True,
        state=BackendState.UP, counter=4, rise=2, fall=3, since=0.0, in_flight=False, last_result=None,
        last_result_time=None, history=(), results={(True, "L7OK"): 7, (False, "L7STS"): 2},
        duration_counts=(1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 6), duration_sum=1.25, probes_sent=9, lateness=0.0,
        downs=0, downtime=0.0, checks=9, failed_checks=2,
    )  # fmt: skip
    fields.update(changes)
    return BackendStatus(**fields)


def written(statuses: list[BackendStatus], openmetrics: bool, wanted: Any = lambda _: True) -> str:
    out = BackendFamilies(DURATION_BUCKETS, wanted, openmetrics)
    for b in statuses:
        out.add(b)
    out.add_transitions([((statuses[0].name, "unknown", "up"), 1), ((statuses[0].name, "up", "down"), 3)])
    return out.text() + ("# EOF\n" if openmetrics else "")


@pytest.mark.parametrize(
    ("raw", "quoted"),
    [
        ("web0", "web0"),
        ('a"b', 'a\\"b'),
        ("a\\b", "a\\\\b"),
        ("a\nb", "a\\nb"),
        ('\\"\n', '\\\\\\"\\n'),
    ],
)
def test_label_values_are_quoted_as_both_formats_read_them(raw: str, quoted: str) -> None:
    assert label_value(raw) == quoted


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (7, "7"),
        (0, "0"),
        (1.25, "1.25"),
        (0.1, "0.1"),
        (float("inf"), "+Inf"),
        (float("-inf"), "-Inf"),
        (1e21, "1e+21"),
    ],
)
def test_numbers(value: float, text: str) -> None:
    assert number(value) == text


@pytest.mark.parametrize(
    ("name", "openmetrics", "shown"),
    [
        ("maglev_probe", False, "maglev_probe_total"),
        ("maglev_probe", True, "maglev_probe"),
        ("maglev_backend_transitions", False, "maglev_backend_transitions_total"),
        ("maglev_backend_transitions", True, "maglev_backend_transitions"),
        ("maglev_probe_duration_seconds", False, "maglev_probe_duration_seconds"),
        ("maglev_backend_state", True, "maglev_backend_state"),
    ],
)
def test_a_counters_header_is_named_as_each_format_names_it(name: str, openmetrics: bool, shown: str) -> None:
    family = FAMILIES[name]
    assert family.header(openmetrics).splitlines() == [f"# HELP {shown} {family.help}", f"# TYPE {shown} {family.kind}"]


@pytest.mark.parametrize("openmetrics", [False, True])
def test_every_series_reads_back(openmetrics: bool) -> None:
    hostile = 'we"b\\1\n'
    text = written([status(), status(hostile, enabled=False, state=BackendState.DOWN, counter=0)], openmetrics)

    def v(name: str, **labels: str) -> float | None:
        return sample(text, name, labels, openmetrics)

    web = {"backend": "web0", "type": "http"}
    assert v("maglev_probe_total", **web, result="success", code="L7OK") == 7
    assert v("maglev_probe_total", **web, result="failure", code="L7STS") == 2
    # cumulative buckets: 1 in the first, 2 more by the third, 6 past the last bound
    buckets = {le: v("maglev_probe_duration_seconds_bucket", **web, le=le) for le in ("0.001", "0.005", "2.5", "+Inf")}
    assert buckets == {"0.001": 1, "0.005": 3, "2.5": 3, "+Inf": 9}
    assert v("maglev_probe_duration_seconds_count", **web) == 9
    assert v("maglev_probe_duration_seconds_sum", **web) == 1.25
    assert v("maglev_backend_state", backend="web0", healthcheck="http", state="up") == 1
    assert v("maglev_backend_state", backend="web0", healthcheck="http", state="down") == 0
    assert v("maglev_backend_state", backend=hostile, healthcheck="http", state="down") == 1
    assert v("maglev_backend_health", backend="web0") == 4
    assert v("maglev_backend_enabled", backend=hostile) == 0
    assert v("maglev_backend_enabled", backend="web0") == 1
    assert v("maglev_backend_transitions_total", backend="web0", **{"from": "up", "to": "down"}) == 3
    # one series set per state, per backend
    assert text.count('maglev_backend_state{backend="web0"') == len(BackendState)


def test_only_the_wanted_families_are_written() -> None:
    text = written([status()], False, lambda name: name == "maglev_backend_health")
    names = {line.split("{")[0] for line in text.splitlines() if not line.startswith("#")}
    assert names == {"maglev_backend_health"}


def test_pieces_are_bounded_and_make_the_whole() -> None:
    out = BackendFamilies(DURATION_BUCKETS, lambda _: True, False)
    for i in range(300):
        out.add(status(f"b{i}"))
    pieces = list(out.pieces(lines_per_piece=100))
    assert max(p.count("\n") for p in pieces) == 100
    assert "".join(pieces) == out.text()
    assert sample(out.text(), "maglev_backend_health", {"backend": "b299"}) == 4
