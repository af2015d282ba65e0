"""The lb plugin's dataplane in the emulator: per-worker flow tables and traffic.

Each worker has its own sticky table (flow hash -> VIP, AS, last seen), bounded by
``sticky-buckets-per-core``; a new flow takes the AS its new-flow bucket points at,
an established one keeps its AS until it idles past the flow timeout or is flushed.
Counters are the plugin's four per-VIP node counters. The model this reads (VIPs,
ASes, conf, counters) is ``lb.LbPlugin``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from .lb_model import FIRST, NEXT, NO_SERVER, UNTRACKED, Vip, flow_hash, ip46, show_address

if TYPE_CHECKING:
    from .lb import LbPlugin


class FlowTables:
    def __init__(self, lb: LbPlugin) -> None:
        self.lb = lb
        self.sticky: list[dict[int, tuple[int, int, float]]] = [{} for _ in range(lb.threads)]
        self.created: set[int] = set()  # workers whose table exists (VPP makes one at its first packet)

    def usage(self) -> list[tuple[int, int]]:
        """(thread, entries) of each table that exists, as ``show lb`` reports them."""
        return [(t, len(self.sticky[t])) for t in sorted(self.created)]

    def clear(self) -> None:
        for t in self.sticky:
            t.clear()
        self.recount()

    def forget(self, which: Callable[[int, int], bool]) -> None:
        """Drop the flows for which ``which(vip index, AS index)`` holds (a flush)."""
        for t in self.sticky:
            for h in [h for h, (v, asi, _) in t.items() if which(v, asi)]:
                del t[h]
        self.recount()

    def expire(self, now: float) -> None:
        """Forget the flows idle longer than the flow timeout."""
        timeout = self.lb.conf.flow_timeout
        for t in self.sticky:
            for h in [h for h, (_, _, seen) in t.items() if now - seen > timeout]:
                del t[h]
        self.recount()

    def recount(self) -> None:
        """Each AS's count of flows, from the tables."""
        for a in self.lb.ases:
            if a is not None:
                a.flows = 0
        for t in self.sticky:
            for _, asi, _ in t.values():
                a = self.lb.ases[asi] if asi < len(self.lb.ases) else None
                if a is not None and asi:
                    a.flows += 1

    def packet(self, vip: Vip, h: int, now: float, size: int = 0) -> int:
        """One packet of the flow with hash ``h`` (``size`` bytes of IP packet; 0: headers
        only) through the VIP's dataplane: the FIB lookup (its route counter), then the lb
        node: the AS index it goes to, 0 when it is dropped (no server). The new-flow table
        must be up to date (``LbPlugin.refresh``)."""
        lb = self.lb
        worker = 1 + (h % lb.workers) if lb.workers else 0
        lb.fib.count(vip.prefix, vip.plen, worker, size or (40 if vip.is_ip4 else 60))
        table = self.sticky[worker]
        self.created.add(worker)
        key = h ^ (vip.index << 48)
        entry = table.get(key)
        if entry is not None and entry[1] != 0:
            counter, asi = NEXT, entry[1]
            table[key] = (vip.index, asi, now)
        else:
            asi = vip.table[h & (vip.new_flows_table_length - 1)]
            if asi == 0:
                counter = NO_SERVER if entry is not None else UNTRACKED
                if entry is None and len(table) < lb.conf.sticky_buckets_per_core:
                    table[key] = (vip.index, 0, now)
            elif len(table) >= lb.conf.sticky_buckets_per_core and key not in table:
                counter = UNTRACKED
            else:
                table[key] = (vip.index, asi, now)
                counter = FIRST
        lb.counters[counter][worker][vip.index] += 1
        if not asi or counter == NO_SERVER:
            return 0
        a = lb.ases[asi]
        if a is None:
            return 0
        a.packets += 1
        return asi

    def traffic(self, vip: Vip, flows: int, packets: int, seed: int = 0) -> dict[str, int]:
        """Push ``flows`` flows of ``packets`` packets each through the VIP's dataplane."""
        lb = self.lb
        now = lb.now()
        self.expire(now)
        delivered: dict[int, int] = {}
        dst = vip.prefix
        for f in range(flows):
            # Synthetic clients from the benchmarking ranges 198.18.0.0/15 and 2001:2::/48.
            if vip.is_ip4:
                src = ip46(struct.pack(">I", 0xC6120000 + ((seed * 65536 + f) & 0x1FFFF)))
            else:
                src = struct.pack(">IIII", 0x20010002, 0, seed, f)
            sport = 1024 + (f % 60000)
            h = flow_hash(src, dst, sport, vip.port, vip.src_ip_sticky)
            for _ in range(packets):
                asi = self.packet(vip, h, now)
                if asi:
                    delivered[asi] = delivered.get(asi, 0) + 1
        self.recount()
        return {show_address(a.address): n for i, n in delivered.items() if (a := lb.ases[i]) is not None}


__all__ = ["FlowTables"]
