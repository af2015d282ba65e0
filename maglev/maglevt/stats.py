"""maglevt's per-VIP statistics. Pure: time comes in as ``now``.

Rolling latency percentiles over the last WINDOW successful probes, lifetime
counts, the tally of a response header's values (which backend answered) with
the time each value was last seen, and an error log classified as
``timeout``, ``http-err``, ``net-err`` or ``spike`` (a success far slower than
usual: more than SPIKE_FACTOR times the rolling p50, and at least SPIKE_FLOOR).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

WINDOW = 1000
SPIKE_FACTOR = 5.0
SPIKE_FLOOR = 0.050  # seconds
ERRORS_KEPT = 200
ACTIVE_FOR = 5.0  # seconds: a header value not seen for this long counts as drained


@dataclass(frozen=True)
class Outcome:
    ok: bool
    latency: float  # seconds
    status: str  # "200", "connected", "timeout", "refused", ...
    kind: str = ""  # error class when not ok: timeout, http-err, net-err
    header: str | None = None  # value of the tallied response header


@dataclass(frozen=True)
class ErrorEntry:
    time: float
    vip: str
    kind: str  # timeout, http-err, net-err, spike
    detail: str


def percentile(ordered: list[float], p: float) -> float:
    if not ordered:
        return 0.0
    k = min(len(ordered) - 1, max(0, int(round(p * (len(ordered) - 1)))))
    return ordered[k]


@dataclass
class VipStats:
    name: str
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    total: int = 0
    failed: int = 0
    last_status: str = "-"
    last_time: float | None = None
    tally: dict[str, int] = field(default_factory=dict)
    seen: dict[str, float] = field(default_factory=dict)

    def record(self, o: Outcome, now: float, errors: deque[ErrorEntry]) -> None:
        self.total += 1
        self.last_status = o.status
        self.last_time = now
        if not o.ok:
            self.failed += 1
            errors.append(ErrorEntry(now, self.name, o.kind or "net-err", o.status))
            return
        p50 = percentile(sorted(self.latencies), 0.5) if len(self.latencies) >= 20 else None
        if p50 is not None and o.latency > max(SPIKE_FACTOR * p50, SPIKE_FLOOR):
            errors.append(ErrorEntry(now, self.name, "spike", f"{o.latency * 1000:.1f}ms (p50 {p50 * 1000:.1f}ms)"))
        self.latencies.append(o.latency)
        if o.header is not None:
            self.tally[o.header] = self.tally.get(o.header, 0) + 1
            self.seen[o.header] = now

    def summary(self, now: float) -> dict[str, object]:
        ordered = sorted(self.latencies)
        ok = self.total - self.failed
        return {
            "vip": self.name,
            "total": self.total,
            "failed": self.failed,
            "ok_percent": round(100.0 * ok / self.total, 2) if self.total else None,
            "p50_ms": round(percentile(ordered, 0.5) * 1000, 2),
            "p95_ms": round(percentile(ordered, 0.95) * 1000, 2),
            "p99_ms": round(percentile(ordered, 0.99) * 1000, 2),
            "max_ms": round(max(ordered) * 1000, 2) if ordered else 0.0,
            "last": self.last_status,
            "backends": {
                value: {"count": n, "active": now - self.seen[value] <= ACTIVE_FOR}
                for value, n in sorted(self.tally.items(), key=lambda kv: -kv[1])
            },
        }


@dataclass
class Board:
    """All VIPs and the shared error log."""

    vips: dict[str, VipStats] = field(default_factory=dict)
    errors: deque[ErrorEntry] = field(default_factory=lambda: deque(maxlen=ERRORS_KEPT))
    error_totals: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("timeout", "http-err", "net-err", "spike"), 0)
    )

    def vip(self, name: str) -> VipStats:
        stats = self.vips.get(name)
        if stats is None:
            stats = self.vips[name] = VipStats(name)
        return stats

    def record(self, name: str, o: Outcome, now: float) -> None:
        before = len(self.errors), self.errors[-1] if self.errors else None
        self.vip(name).record(o, now, self.errors)
        if (len(self.errors), self.errors[-1] if self.errors else None) != before:
            kind = self.errors[-1].kind
            self.error_totals[kind] = self.error_totals.get(kind, 0) + 1
