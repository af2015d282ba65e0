"""The FIB entries the lb plugin's VIPs make, and their route counters.

Each VIP prefix gets one FIB entry (per-port VIPs on one prefix share it), made with
the first VIP on the prefix and removed with the last. VPP counts every packet the
lookup sends to an entry in the combined counter ``/net/route/to`` (packets, bytes) at
the entry's load-balance index, which ``ip_route_lookup`` returns as ``stats_index``.
Indexes are pool slots: freed with the entry, reused lowest first, zeroed when reused.
Prefixes are ip46 with the internal length (IPv4: 96 + len), as lb_model keys VIPs.
"""

from __future__ import annotations

import heapq

from .lb_model import mask

FIRST_INDEX = 16  # VPP's own routes (defaults, specials) hold the first load-balance slots
DEFAULTS = {(bytes(16), 96): 0, (bytes(16), 0): 1}  # 0.0.0.0/0 and ::/0: always there
Prefix = tuple[bytes, int]


class Fib:
    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.entries: dict[Prefix, list[int]] = {}  # prefix -> [stats index, VIPs using it]
        self._free: list[int] = []
        self._next = FIRST_INDEX
        self.to: list[list[int]] = [[0] * 2 * FIRST_INDEX for _ in range(threads)]  # (packets, bytes) by index

    def vip_added(self, prefix: bytes, plen: int) -> None:
        entry = self.entries.get((prefix, plen))
        if entry is not None:
            entry[1] += 1
            return
        if self._free:
            index = heapq.heappop(self._free)
        else:
            index, self._next = self._next, self._next + 1
        for per_thread in self.to:
            if len(per_thread) < 2 * (index + 1):
                per_thread.extend([0] * (2 * (index + 1) - len(per_thread)))
            per_thread[2 * index] = per_thread[2 * index + 1] = 0
        self.entries[(prefix, plen)] = [index, 1]

    def vip_removed(self, prefix: bytes, plen: int) -> None:
        entry = self.entries.get((prefix, plen))
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            del self.entries[(prefix, plen)]
            heapq.heappush(self._free, entry[0])

    def lookup(self, address: bytes, plen: int, exact: bool) -> tuple[int, bytes, int] | None:
        """(stats index, prefix, internal length) of the entry an ip_route_lookup finds."""
        if exact:  # as VPP's exact match: the address as given, not masked
            hit = self.entries.get((address, plen))
            if hit is not None:
                return hit[0], address, plen
            default = DEFAULTS.get((address, plen))
            return (default, address, plen) if default is not None else None
        v4 = plen >= 96 and address[:12] == bytes(12)
        best = max(
            (p for p in self.entries if (p[1] >= 96) == v4 and p[1] <= plen and mask(address, p[1]) == p[0]),
            key=lambda p: p[1],
            default=None,
        )
        if best is None:
            base = 96 if v4 else 0
            return DEFAULTS[(bytes(16), base)], bytes(16), base
        return self.entries[best][0], best[0], best[1]

    def count(self, prefix: bytes, plen: int, thread: int, size: int) -> None:
        """One packet of ``size`` bytes the lookup sent to the VIP's entry."""
        entry = self.entries.get((prefix, plen))
        if entry is not None:
            row = self.to[thread]
            row[2 * entry[0]] += 1
            row[2 * entry[0] + 1] += size


__all__ = ["FIRST_INDEX", "Fib"]
