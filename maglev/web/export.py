"""The stats table as rows, CSV or JSON (``/view/api/stats.csv``, ``.json``), HAProxy-style.

One row per VIP (its VPP counters, its prefix's route counters, their rates) followed by one row per member of
each of its pools (state, time in it, the last check, check and down counts, downtime),
for every maglevd the page shows. Built from the views (view.py). Pure.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

COLUMNS = (
    "type", "maglevd", "frontend", "vip", "pool", "backend", "address", "state", "since", "in_state_s",
    "weight", "effective_weight", "buckets", "last_check_code", "last_check_detail", "last_check_ms",
    "checks", "failed_checks", "downs", "downtime_s",
    "next", "first", "untracked", "no_server", "next_rate", "first_rate", "untracked_rate", "no_server_rate",
    "route_packets", "route_bytes", "route_packets_rate", "route_bytes_rate",
)  # fmt: skip
KINDS = ("next", "first", "untracked", "no_server", "route_packets", "route_bytes")


def _vip_row(daemon: str, fe: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"type": "vip", "maglevd": daemon, "frontend": fe["name"], "vip": fe["vip"]}
    row["state"] = fe["state"]
    c = fe["counters"]
    for k in KINDS:
        row[k] = c[k] if c else None
        rate = c["rates"][k] if c else None
        row[f"{k}_rate"] = round(rate, 3) if rate is not None else None
    return row


def _backend_row(daemon: str, fe: dict[str, Any], pool: str, b: dict[str, Any], now: float) -> dict[str, Any]:
    lp = b["last_probe"]
    return {
        "type": "backend", "maglevd": daemon, "frontend": fe["name"], "vip": fe["vip"], "pool": pool,
        "backend": b["name"], "address": b["address"], "state": b["state"], "since": b["since"] or None,
        "in_state_s": round(max(now - b["since"], 0.0), 3) if b["since"] else None,
        "weight": b["weight"], "effective_weight": b["effective_weight"], "buckets": b["buckets"],
        "last_check_code": lp["code"] if lp else None, "last_check_detail": lp["detail"] if lp else None,
        "last_check_ms": round(lp["duration"] * 1000, 3) if lp else None,
        "checks": b["checks"], "failed_checks": b["failed_checks"], "downs": b["downs"],
        "downtime_s": round(b["downtime"], 3),
    }  # fmt: skip


def stats_rows(views: Iterable[dict[str, Any]], now: float) -> list[dict[str, Any]]:
    """Rows (every column, None where it does not apply) of each daemon view."""
    rows: list[dict[str, Any]] = []
    for view in views:
        for fe in view["frontends"]:
            rows.append(_vip_row(view["name"], fe))
            for pool in fe["pools"]:
                rows.extend(_backend_row(view["name"], fe, pool["name"], b, now) for b in pool["backends"])
    return [{c: row.get(c) for c in COLUMNS} for row in rows]


def to_csv(rows: list[dict[str, Any]]) -> str:
    """RFC 4180 CSV with a header line; an empty cell where a column does not apply."""
    out = io.StringIO()
    w = csv.DictWriter(out, COLUMNS, lineterminator="\r\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()


__all__ = ["COLUMNS", "stats_rows", "to_csv"]
