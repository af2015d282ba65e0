"""Metric families as Prometheus text, written by hand for the largest families.

prometheus_client builds a Sample (a namedtuple and a dict of labels) for every series and
then formats each: for 10,000 backends, 240,000 series took 3.5 s of one reactor turn
(docs/performance.md). The per-backend and per-member families are written here instead,
a line at a time with each label escaped once, so a scrape costs a few microseconds a
backend and can stop between any two. Both formats prometheus_client answers in are
written: for these families the text format 0.0.4 and OpenMetrics 1.0 differ only in a
counter's HELP and TYPE lines (``maglev_probe_total`` against ``maglev_probe``); the
OpenMetrics end mark is the caller's to write, once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple


class Family(NamedTuple):
    name: str
    kind: str  # counter, gauge, histogram
    help: str

    def header(self, openmetrics: bool) -> str:
        shown = self.name + "_total" if self.kind == "counter" and not openmetrics else self.name
        return f"# HELP {shown} {self.help}\n# TYPE {shown} {self.kind}\n"


def label_value(text: str) -> str:
    """A label value as both formats quote it: backslash, double quote and newline escaped."""
    if "\\" in text or '"' in text or "\n" in text:
        return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return text


def number(value: float) -> str:
    """A sample's value: integers as they are, floats as Python writes them (both formats read both)."""
    if isinstance(value, int):
        return str(value)
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def pieces(
    families: Iterable[tuple[Family, list[str]]], openmetrics: bool, lines_per_piece: int = 2000
) -> Iterator[str]:
    """Each family's header, then its lines in pieces of at most ``lines_per_piece`` (each one
    cheap to join and send)."""
    for family, lines in families:
        yield family.header(openmetrics)
        for at in range(0, len(lines), lines_per_piece):
            yield "".join(lines[at : at + lines_per_piece])


__all__ = ["Family", "label_value", "number", "pieces"]
