"""How long ago, for people: the two largest units (``now``, ``42s``, ``10m30s``,
``1h12m``, ``1d16h``). Shared by maglevc and the web UI (whose script ticks the same
format in the browser). Plain logic."""

from __future__ import annotations


def format_age(seconds: float) -> str:
    s = int(seconds)  # written out unit by unit: the web page formats two for each of its rows
    if s < 60:
        return f"{s}s" if s >= 1 else "now"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s}s" if s else f"{m}m"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h{m}m" if m else f"{h}h"
    d, h = divmod(h, 24)
    return f"{d}d{h}h" if h else f"{d}d"
