"""How long ago, for people: the two largest units (``now``, ``42s``, ``10m30s``,
``1h12m``, ``1d16h``). Shared by maglevc and the web UI (whose script ticks the same
format in the browser). Plain logic."""

from __future__ import annotations


def format_age(seconds: float) -> str:
    s = int(seconds)
    if s < 1:
        return "now"
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (s, "s")]
    first = next(i for i, (n, _) in enumerate(parts) if n)
    shown = parts[first : first + 2]
    if len(shown) == 2 and shown[1][0] == 0:
        shown = shown[:1]
    return "".join(f"{n}{unit}" for n, unit in shown)
