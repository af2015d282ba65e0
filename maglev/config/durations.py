"""Go-style durations: ``500ms``, ``2s``, ``1m30s``, ``1h``."""

from __future__ import annotations

import re

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+")


class DurationError(ValueError):
    pass


def parse_duration(text: str) -> float:
    """Return seconds. A bare number is refused: a unit is always required."""
    s = text.strip()
    if s == "0":
        return 0.0
    if not _WHOLE.fullmatch(s):
        raise DurationError(f"invalid duration {text!r}: use a number with a unit, e.g. 500ms, 2s, 1m30s")
    return sum(float(n) * _UNITS[u] for n, u in _PART.findall(s))


def format_duration(seconds: float) -> str:
    """The shortest exact spelling, for messages and the API (``1.5s``, ``500ms``, ``2m``)."""
    if seconds == 0:
        return "0s"
    ms = round(seconds * 1000)
    if abs(seconds * 1000 - ms) > 1e-6:
        return f"{seconds:g}s"
    if ms % 60000 == 0:
        return f"{ms // 60000}m"
    if ms % 1000 == 0:
        return f"{ms // 1000}s"
    if ms < 1000:
        return f"{ms}ms"
    return f"{ms / 1000:g}s"
