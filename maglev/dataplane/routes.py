"""The VIPs' route counters: packets and bytes VPP's FIB sent to each VIP prefix.

VPP counts them in the combined counter ``/net/route/to`` at the load-balance index of
the prefix's FIB entry, which ``ip_route_lookup`` returns as ``stats_index`` (per-port
VIPs on one address share the entry, so they share these counts). The index is asked
for once per prefix and forgotten at each full read of VPP (a VIP recreated may get a
new entry). Only those indexes are read from the segment: a router's full table has
millions of entries. A VPP whose API definitions lack ``ip_route_lookup`` has none of
this. VPP thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .desired import VipKey

ROUTE_TO = "/net/route/to"
COMBINED = 3  # the stats directory's type of a combined (packets, bytes) counter
TRIES = 100  # optimistic reads while VPP rewrites the segment


def combined_at(stats: Any, name: str, indexes: Iterable[int]) -> dict[int, tuple[int, int]]:
    """(packets, bytes) summed over threads at each index of a combined counter, read with
    vpp_papi's own vectors under the segment's optimistic lock. KeyError: no such counter."""
    from vpp_papi.vpp_stats import StatsVector

    wanted = sorted(set(indexes))
    for _ in range(TRIES):
        try:
            if stats.last_epoch != stats.epoch:
                stats.refresh()
            entry = stats.directory[name]
            if entry.type != COMBINED:
                raise KeyError(f"{name} is not a combined counter")
            with stats.lock:
                out = {}
                vectors = [StatsVector(stats, t[0], "QQ") for t in StatsVector(stats, entry.value, "P")]
                for i in wanted:
                    pairs = [v[i] for v in vectors if i < v.vec_len]
                    out[i] = (sum(p for p, _ in pairs), sum(b for _, b in pairs))
                return out
        except OSError:  # the segment changed under the read: again
            continue
    raise OSError(f"{name}: the stats segment kept changing while read")


class RouteCounters:
    def __init__(self) -> None:
        self.index: dict[str, int | None] = {}  # prefix -> stats index (None: VPP has no entry)

    def forget(self) -> None:
        self.index.clear()

    def read(
        self, call: Callable[..., Any], can_lookup: bool, stats: Any, keys: Iterable[VipKey]
    ) -> dict[VipKey, tuple[int, int]]:
        """Each VIP's (packets, bytes) to its prefix; VIPs without an entry are left out."""
        if not can_lookup or stats is None:
            return {}
        where: dict[VipKey, int] = {}
        for key in keys:
            prefix = f"{key.address}/{key.address.max_prefixlen}"
            if prefix not in self.index:
                r = call("ip_route_lookup", table_id=0, exact=1, prefix=prefix)
                self.index[prefix] = int(r.route.stats_index) if r.retval == 0 else None
            index = self.index[prefix]
            if index is not None:
                where[key] = index
        try:
            counts = combined_at(stats, ROUTE_TO, where.values())
        except KeyError:
            return {}
        return {key: counts[i] for key, i in where.items()}


__all__ = ["ROUTE_TO", "RouteCounters", "combined_at"]
