"""A model of VPP's lb plugin: VIPs, application servers, the Maglev new-flow
table, sticky tables, counters and garbage collection, with the behaviour and
error codes of the real plugin (docs/vppemu.md lists them, with sources).

Pure Python, no sockets: the API server (server.py) translates messages into
calls here. Time comes from an injected ``now()`` (VPP uptime seconds).

Two flavours: ``master`` (lb API 1.2.0: weights, fixed handlers) and
``v26.06`` (no weights; IPv4 prefix length taken as the internal ip46 length,
only encap 0 honoured, internal encap and protocol 0 in dumps, no VIP GC).
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import ipaddress
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from ..vppapi import RETVAL_NAMES

# retvals (src/vnet/error.h)
OK = 0
NO_SUCH_ENTRY = -6
INVALID_VALUE = -7
INVALID_MEMORY_SIZE = -70
INVALID_ARGUMENT = -73
VALUE_EXIST = -81
INVALID_ADDRESS_FAMILY = -97
ERROR_NAMES = {OK: "OK", **RETVAL_NAMES}


class Encap(IntEnum):  # lb_encap_type (API)
    GRE4 = 0
    GRE6 = 1
    L3DSR = 2
    NAT4 = 3
    NAT6 = 4


class VipType(IntEnum):  # lb_vip_type (internal)
    IP6_GRE6 = 0
    IP6_GRE4 = 1
    IP4_GRE6 = 2
    IP4_GRE4 = 3
    IP4_L3DSR = 4
    IP4_NAT4 = 5
    IP6_NAT6 = 6

    @property
    def as_v4(self) -> bool:
        return self in (VipType.IP6_GRE4, VipType.IP4_GRE4, VipType.IP4_L3DSR, VipType.IP4_NAT4)

    @property
    def api_encap(self) -> Encap:
        return {
            VipType.IP6_GRE6: Encap.GRE6,
            VipType.IP6_GRE4: Encap.GRE4,
            VipType.IP4_GRE6: Encap.GRE6,
            VipType.IP4_GRE4: Encap.GRE4,
            VipType.IP4_L3DSR: Encap.L3DSR,
            VipType.IP4_NAT4: Encap.NAT4,
            VipType.IP6_NAT6: Encap.NAT6,
        }[self]

    @property
    def is_nat(self) -> bool:
        return self in (VipType.IP4_NAT4, VipType.IP6_NAT6)

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")


class CrashRefused(Exception):
    """An input that aborts a real VPP; answered with an error instead (docs/vppemu.md)."""


V4_PREFIX = bytes(12)


def ip46(address: bytes) -> bytes:
    """16-byte ip46 form: IPv4 as 12 zero bytes plus the address, as VPP stores it."""
    return V4_PREFIX + address if len(address) == 4 else address


def is_ip4(addr16: bytes) -> bool:
    return addr16[:12] == V4_PREFIX


def mask(addr16: bytes, plen: int) -> bytes:
    value = int.from_bytes(addr16, "big")
    keep = ((1 << plen) - 1) << (128 - plen) if plen else 0
    return (value & keep).to_bytes(16, "big")


def show_address(addr16: bytes) -> str:
    if is_ip4(addr16):
        return str(ipaddress.IPv4Address(addr16[12:]))
    return str(ipaddress.IPv6Address(addr16))


@dataclass
class AppServer:
    index: int
    vip: int
    address: bytes  # ip46
    weight: int = 100
    used: bool = True
    last_used: float = 0.0  # uptime when removed
    buckets: int = 0
    flows: int = 0  # sticky entries pointing here
    packets: int = 0  # packets the traffic simulator delivered here


@dataclass
class Vip:
    index: int
    prefix: bytes  # ip46, host bits cleared
    plen: int  # internal (IPv4: 96 + len)
    protocol: int
    port: int
    type: VipType
    new_flows_table_length: int
    src_ip_sticky: bool = False
    dscp: int = 0
    srv_type: int = 0
    target_port: int = 0
    deleted: bool = False
    ases: list[int] = field(default_factory=list)  # AppServer indexes, in insertion order
    table: list[int] = field(default_factory=list)  # bucket -> AS index (0 = none)
    dirty: bool = False  # the table is recomputed when next needed
    last_gc: float = 0.0

    @property
    def key(self) -> tuple[bytes, int, int, int]:
        return (self.prefix, self.plen, self.protocol, self.port)

    @property
    def is_ip4(self) -> bool:
        return self.plen >= 96 and is_ip4(self.prefix)

    def describe(self) -> str:
        plen = self.plen - 96 if self.is_ip4 else self.plen
        return f"{show_address(self.prefix)}/{plen} protocol {self.protocol} port {self.port}"


@dataclass(frozen=True)
class Conf:
    ip4_src: bytes = b"\xff" * 4
    ip6_src: bytes = b"\xff" * 16
    sticky_buckets_per_core: int = 1024
    flow_timeout: int = 40


COUNTER_NAMES = ("packet from existing sessions", "first session packet", "untracked packet", "no server configured")
NEXT, FIRST, UNTRACKED, NO_SERVER = range(4)


@functools.lru_cache(maxsize=1 << 18)
def _seed(address: bytes, replica: int) -> int:
    return int.from_bytes(hashlib.blake2b(address + struct.pack(">I", replica), digest_size=8).digest(), "big")


def maglev_table(entries: list[tuple[int, bytes, int]], length: int) -> list[int]:
    """The plugin's fill: ``entries`` are (AS index, ip46 address, weight).

    Each in-use AS with weight w > 0 takes w replicas, sorted by (replica,
    address) so the table does not depend on insertion order. Round robin over
    the replicas, each claims the next free bucket of its own permutation
    (offset/skip from a hash, skip odd so it visits every bucket) until the
    table is full. With no weight at all, every bucket points at AS 0.
    """
    table = [0] * length
    by_address = sorted(entries, key=lambda e: e[1])
    replicas: list[tuple[int, bytes, int]] = []
    # (replica, address) order; a first pass longer than the table fills it, so stop there.
    for r in range(max((w for _, _, w in entries), default=0)):
        for idx, addr, w in by_address:
            if w > r:
                replicas.append((r, addr, idx))
        if len(replicas) >= length:
            del replicas[length:]
            break
    if not replicas:
        return table
    m = length - 1
    state = []
    for r, addr, idx in replicas:
        seed = _seed(addr, r)
        state.append([idx, (seed >> 32) & m, ((seed & 0xFFFFFFFF) | 1) & m])
    filled = 0
    taken = [False] * length
    while True:
        for s in state:
            idx, last, skip = s
            while taken[last]:
                last = (last + skip) & m
            taken[last] = True
            table[last] = idx
            s[1] = (last + skip) & m
            filled += 1
            if filled == length:
                return table


def flow_hash(src: bytes, dst: bytes, sport: int, dport: int, proto: int, sticky_src_only: bool) -> int:
    data = src + dst if sticky_src_only else src + dst + struct.pack(">HHB", sport, dport, proto)
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def _place(pool: list[Any], free: list[int], item: Any) -> int:
    """A slot of a VPP-style pool (slot 0 is the placeholder): the lowest freed one first, else a new one."""
    if free:
        index = heapq.heappop(free)
        pool[index] = item
        return index
    pool.append(item)
    return len(pool) - 1


class LbPlugin:
    """The lb plugin's state. Every public method returns a VPP retval (and data)."""

    def __init__(
        self,
        flavour: str = "master",
        now: Callable[[], float] | None = None,
        workers: int = 2,
        gc_interval: float = 60.0,
        as_grace: float | None = None,
    ) -> None:
        if flavour not in ("master", "v26.06"):
            raise ValueError(f"unknown flavour {flavour!r}: master or v26.06")
        self.flavour = flavour
        self.weights = flavour == "master"
        self.now = now or (lambda: 0.0)
        self.threads = 1 + workers  # thread 0 is main; packets go to workers
        self.workers = workers
        self.gc_interval = gc_interval
        self.as_grace = min(10.0, gc_interval) if as_grace is None else as_grace
        self.conf = Conf()
        # Pool slot 0 is the placeholder VIP (and AS 0 the placeholder AS), as in VPP.
        placeholder = Vip(0, bytes(16), 0, 255, 0, VipType.IP6_GRE6, 1)
        self.vips: list[Vip | None] = [placeholder]
        self._by_key: dict[tuple[bytes, int, int, int], Vip] = {}  # live (not deleted) VIPs
        self._keys: dict[tuple[int, bytes, int], tuple[bytes, int]] = {}  # API prefix -> key, memoised
        self._free_vips: list[int] = []  # heaps of freed pool slots
        self._free_ases: list[int] = []
        self.ases: list[AppServer | None] = [AppServer(0, 0, bytes(16), used=False)]
        self.counters: list[list[list[int]]] = []  # [counter][thread][vip index], created on the first VIP
        self.sticky: list[dict[int, tuple[int, int, float]]] = [
            {} for _ in range(self.threads)
        ]  # hash -> (vip, as, seen)

    # --- conf -------------------------------------------------------------------
    def lb_conf(self, ip4: bytes, ip6: bytes, buckets: int, timeout: int) -> int:
        if buckets != 0xFFFFFFFF and (buckets == 0 or buckets & (buckets - 1)):
            return INVALID_MEMORY_SIZE
        self.conf = Conf(
            ip4_src=ip4,
            ip6_src=ip6,
            sticky_buckets_per_core=self.conf.sticky_buckets_per_core if buckets == 0xFFFFFFFF else buckets,
            flow_timeout=self.conf.flow_timeout if timeout == 0xFFFFFFFF else timeout,
        )
        if buckets != 0xFFFFFFFF:
            for t in self.sticky:  # each worker rebuilds its table: established flows lose stickiness
                t.clear()
            self._recount_flows()
        self.gc(all_vips=True)
        return OK

    # --- VIP keys ---------------------------------------------------------------
    def vip_key(self, af: int, raw16: bytes, length: int) -> tuple[bytes, int]:
        """API prefix -> (ip46, internal plen), per flavour; raises CrashRefused."""
        cached = self._keys.get((af, raw16, length))
        if cached is not None:
            return cached
        key = self._vip_key(af, raw16, length)
        if len(self._keys) > 65536:
            self._keys.clear()
        self._keys[(af, raw16, length)] = key
        return key

    def _vip_key(self, af: int, raw16: bytes, length: int) -> tuple[bytes, int]:
        if af == 0:  # ADDRESS_IP4
            addr = ip46(raw16[:4])
            if self.weights:
                if length > 32:
                    raise CrashRefused(
                        f"IPv4 prefix length {length} > 32: ip4_mtrie.c assertion 'dst_address_length <= 32' "
                        "would abort VPP"
                    )
                plen = 96 + length
            else:
                if length > 128:
                    raise CrashRefused(
                        f"IPv4 prefix length {length} > 128: ip4_mtrie.c assertion 'dst_address_length <= 32' "
                        "would abort VPP 26.06"
                    )
                plen = length
        else:
            addr = raw16
            if length > 128:
                raise CrashRefused(f"IPv6 prefix length {length} > 128: VPP would run out of memory and abort")
            plen = length
        return mask(addr, plen), plen

    def find_vip(self, prefix: bytes, plen: int, protocol: int, port: int) -> Vip | None:
        if port == 0:
            protocol = 255
        return self._by_key.get((prefix, plen, protocol, port))

    def _vip_type(self, v4: bool, encap: int) -> VipType | int:
        if not self.weights:
            # 26.06 compares the network-order enum with host order: only 0 (gre4) is recognised.
            if encap == 0:
                return VipType.IP4_GRE4 if v4 else VipType.IP6_GRE4
            return VipType.IP6_GRE6
        if v4:
            v4_types = {0: VipType.IP4_GRE4, 1: VipType.IP4_GRE6, 2: VipType.IP4_L3DSR, 3: VipType.IP4_NAT4}
            return v4_types.get(encap, INVALID_ADDRESS_FAMILY)  # nat6 (or garbage) on an IPv4 VIP: -97
        # gre6, and silently for l3dsr/nat4 (and garbage) on an IPv6 VIP: ip6-gre6
        return {0: VipType.IP6_GRE4, 4: VipType.IP6_NAT6}.get(encap, VipType.IP6_GRE6)

    # --- VIPs -------------------------------------------------------------------
    def add_vip(
        self,
        prefix: bytes,
        plen: int,
        protocol: int,
        port: int,
        encap: int,
        new_length: int,
        src_ip_sticky: bool = False,
        dscp: int = 0,
        srv_type: int = 0,
        target_port: int = 0,
    ) -> int:
        if port == 0:
            protocol = 255
        if new_length == 0 or new_length & (new_length - 1):
            return INVALID_MEMORY_SIZE
        if self.find_vip(prefix, plen, protocol, port) is not None:
            return VALUE_EXIST
        v4 = plen >= 96 and is_ip4(prefix)
        same_prefix = [
            v for v in self.vips[1:] if v is not None and not v.deleted and (v.prefix, v.plen) == (prefix, plen)
        ]
        if any((v.port == 0) != (port == 0) for v in same_prefix):
            return VALUE_EXIST
        vtype = self._vip_type(v4, encap)
        if port != 0:
            for other in same_prefix:
                if other.port != 0 and isinstance(vtype, VipType) and other.type != vtype:
                    return INVALID_ARGUMENT
                if other.port != 0 and not isinstance(vtype, VipType):
                    return INVALID_ARGUMENT
        if not isinstance(vtype, VipType):
            return vtype
        if v4 != (vtype.name.startswith("IP4")):
            return INVALID_ADDRESS_FAMILY
        index = _place(self.vips, self._free_vips, None)
        vip = Vip(
            index, prefix, plen, protocol, port, vtype, new_length, src_ip_sticky if self.weights else False,
            dscp & 0x3F if vtype is VipType.IP4_L3DSR else 0, srv_type if vtype.is_nat else 0,
            target_port if vtype.is_nat else 0, last_gc=self.now(),
        )  # fmt: skip
        vip.table = [0] * new_length
        self.vips[index] = vip
        self._by_key[vip.key] = vip
        self._ensure_counters(index)
        for c in self.counters:  # a new VIP in a slot starts from zero
            for per_thread in c:
                per_thread[index] = 0
        return OK

    def _ensure_counters(self, index: int) -> None:
        if not self.counters:
            self.counters = [[[0] * (index + 1) for _ in range(self.threads)] for _ in COUNTER_NAMES]
        for c in self.counters:
            for per_thread in c:
                if len(per_thread) <= index:
                    per_thread.extend([0] * (index + 1 - len(per_thread)))

    def del_vip(self, prefix: bytes, plen: int, protocol: int, port: int) -> int:
        vip = self.find_vip(prefix, plen, protocol, port)
        if vip is None:
            return NO_SUCH_ENTRY
        now = self.now()
        for i in vip.ases:
            a = self.ases[i]
            if a is not None and a.used:
                a.used, a.last_used = False, now
        vip.deleted = True
        del self._by_key[vip.key]
        vip.table = [0] * vip.new_flows_table_length
        vip.dirty = False
        self._update_buckets(vip)
        return OK

    # --- application servers ------------------------------------------------------
    def _find_as(self, vip: Vip, addr16: bytes) -> AppServer | None:
        for i in vip.ases:
            a = self.ases[i]
            if a is not None and a.address == addr16:
                return a
        return None

    def add_as(self, vip: Vip, addr16: bytes, weight: int = 100, flush: bool = False) -> int:
        if vip.port == 0 and vip.type.is_nat:
            raise CrashRefused(
                f"AS added to all-port NAT VIP {vip.describe()}: dpo.c assertion in dpo_get_next_node "
                "(lb_as_stack) would abort VPP"
            )
        if is_ip4(addr16) != vip.type.as_v4:
            return INVALID_ADDRESS_FAMILY
        existing = self._find_as(vip, addr16)
        if existing is not None and existing.used:
            return VALUE_EXIST
        self._config_gc(vip)
        existing = self._find_as(vip, addr16)
        if existing is not None:  # removed but not collected yet: revived
            existing.used = True
            existing.weight = weight
            existing.last_used = 0.0
            if flush:
                self._flush_as(existing)
        else:
            index = _place(self.ases, self._free_ases, None)
            self.ases[index] = AppServer(index, vip.index, addr16, weight=weight)
            vip.ases.append(index)
        self._rebuild(vip)
        return OK

    def del_as(self, vip: Vip, addr16: bytes, flush: bool = False) -> int:
        a = self._find_as(vip, addr16)
        if a is None:
            return NO_SUCH_ENTRY
        if a.used:
            a.used, a.last_used = False, self.now()
            self._rebuild(vip)
        if flush:
            self._flush_as(a)
        self._config_gc(vip)
        return OK

    def set_weight(self, vip: Vip, addr16: bytes, weight: int, flush: bool = False) -> int:
        a = self._find_as(vip, addr16)
        if a is None or not a.used:
            return NO_SUCH_ENTRY
        a.weight = weight
        self._rebuild(vip)
        if flush:
            self._flush_as(a)
        return OK

    def flush_vip(self, vip: Vip | None) -> int:
        if vip is not None:
            for t in self.sticky:
                for h in [h for h, (v, _, _) in t.items() if v == vip.index]:
                    del t[h]
            self._recount_flows()
        return OK  # always 0, even for an unknown VIP (the lookup result is overwritten)

    def _flush_as(self, a: AppServer) -> None:
        for t in self.sticky:
            for h in [h for h, (_, asi, _) in t.items() if asi == a.index]:
                del t[h]
        self._recount_flows()

    def _rebuild(self, vip: Vip) -> None:
        # VPP recomputes at once, in C; here the fill waits until a dump, the CLI or
        # traffic needs it, so a burst of weight changes costs one fill.
        vip.dirty = True

    def refresh(self, vip: Vip) -> None:
        if not vip.dirty:
            return
        vip.dirty = False
        entries = []
        for i in vip.ases:
            a = self.ases[i]
            if a is not None and a.used and (a.weight > 0 if self.weights else True):
                entries.append((a.index, a.address, a.weight if self.weights else 1))
        vip.table = maglev_table(entries, vip.new_flows_table_length)
        self._update_buckets(vip)

    def _update_buckets(self, vip: Vip) -> None:
        counts: dict[int, int] = {}
        for asi in vip.table:
            counts[asi] = counts.get(asi, 0) + 1
        for i in vip.ases:
            a = self.ases[i]
            if a is not None:
                a.buckets = counts.get(i, 0)

    # --- garbage collection ---------------------------------------------------------
    def _collectable(self, a: AppServer, now: float) -> bool:
        return not a.used and now - a.last_used >= self.as_grace and a.flows == 0

    def _gc_vip(self, vip: Vip, now: float) -> None:
        vip.last_gc = now
        for i in list(vip.ases):
            a = self.ases[i]
            if a is not None and self._collectable(a, now):
                vip.ases.remove(i)
                self.ases[i] = None
                heapq.heappush(self._free_ases, i)
        if vip.deleted and not vip.ases and self.weights:
            self.vips[vip.index] = None
            heapq.heappush(self._free_vips, vip.index)

    def _config_gc(self, vip: Vip) -> None:
        """Config calls collect on their VIP, at most once per GC interval."""
        now = self.now()
        if now - vip.last_gc >= self.gc_interval:
            self._gc_vip(vip, now)

    def gc(self, all_vips: bool = False) -> None:
        """The lb-gc-process (master only, every GC interval); ``all_vips`` for lb_conf."""
        now = self.now()
        self._expire_flows(now)
        for v in list(self.vips[1:]):
            if v is None:
                continue
            if all_vips or (self.weights and now - v.last_gc >= self.gc_interval):
                self._gc_vip(v, now)

    # --- traffic ----------------------------------------------------------------------
    def _expire_flows(self, now: float) -> None:
        timeout = self.conf.flow_timeout
        for t in self.sticky:
            for h in [h for h, (_, _, seen) in t.items() if now - seen > timeout]:
                del t[h]
        self._recount_flows()

    def _recount_flows(self) -> None:
        for a in self.ases:
            if a is not None:
                a.flows = 0
        for t in self.sticky:
            for _, asi, _ in t.values():
                a = self.ases[asi] if asi < len(self.ases) else None
                if a is not None and asi:
                    a.flows += 1

    def traffic(self, vip: Vip, flows: int, packets: int, seed: int = 0) -> dict[str, int]:
        """Push ``flows`` flows of ``packets`` packets each through the VIP's dataplane."""
        now = self.now()
        self._expire_flows(now)
        self.refresh(vip)
        mask_ = vip.new_flows_table_length - 1
        capacity = self.conf.sticky_buckets_per_core
        delivered: dict[int, int] = {}
        dst = vip.prefix
        for f in range(flows):
            # Synthetic clients from the benchmarking ranges 198.18.0.0/15 and 2001:2::/48.
            if vip.is_ip4:
                src = ip46(struct.pack(">I", 0xC6120000 + ((seed * 65536 + f) & 0x1FFFF)))
            else:
                src = struct.pack(">IIII", 0x20010002, 0, seed, f)
            sport = 1024 + (f % 60000)
            h = flow_hash(src, dst, sport, vip.port, vip.protocol if vip.protocol != 255 else 6, vip.src_ip_sticky)
            worker = 1 + (h % self.workers) if self.workers else 0
            table = self.sticky[worker]
            key = h ^ (vip.index << 48)
            for _ in range(packets):
                entry = table.get(key)
                if entry is not None and entry[1] != 0:
                    counter, asi = NEXT, entry[1]
                    table[key] = (vip.index, asi, now)
                else:
                    asi = vip.table[h & mask_]
                    if asi == 0:
                        counter = NO_SERVER if entry is not None else UNTRACKED
                        if entry is None and len(table) < capacity:
                            table[key] = (vip.index, 0, now)
                    elif len(table) >= capacity and key not in table:
                        counter = UNTRACKED
                    else:
                        table[key] = (vip.index, asi, now)
                        counter = FIRST
                self.counters[counter][worker][vip.index] += 1
                if asi and counter != NO_SERVER:
                    a = self.ases[asi]
                    if a is not None:
                        a.packets += 1
                        delivered[asi] = delivered.get(asi, 0) + 1
        self._recount_flows()
        return {show_address(self.ases[i].address): n for i, n in delivered.items() if self.ases[i] is not None}  # type: ignore[union-attr]

    # --- views --------------------------------------------------------------------------
    def live_vips(self) -> list[Vip]:
        return [v for v in self.vips[1:] if v is not None and (not v.deleted or not self.weights)]

    def ases_of(self, vip: Vip) -> list[AppServer]:
        self.refresh(vip)
        return [a for a in (self.ases[i] for i in vip.ases) if a is not None]

    def vip_counters(self, index: int) -> dict[str, int]:
        if not self.counters or index >= len(self.counters[0][0]):
            return {name: 0 for name in COUNTER_NAMES}
        return {name: sum(t[index] for t in self.counters[c]) for c, name in enumerate(COUNTER_NAMES)}
