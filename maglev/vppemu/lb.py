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

import heapq
from collections.abc import Callable
from typing import Any

from .fib import Fib
from .flows import FlowTables
from .gc import Collector
from .lb_model import (  # re-exported: the plugin's values are part of its interface
    COUNTER_NAMES,
    ERROR_NAMES,
    INVALID_ADDRESS_FAMILY,
    INVALID_ARGUMENT,
    INVALID_MEMORY_SIZE,
    INVALID_VALUE,
    NO_SUCH_ENTRY,
    OK,
    V4_PREFIX,
    VALUE_EXIST,
    AppServer,
    Conf,
    CrashRefused,
    Encap,
    Vip,
    VipType,
    api_prefix_key,
    flow_hash,
    ip46,
    is_ip4,
    maglev_table,
    mask,
    refill,
    show_address,
    vip_type_for,
)


def _place(pool: list[Any], free: list[int], item: Any) -> int:
    """A slot of a VPP-style pool (slot 0 is the placeholder): the lowest freed one first, else a new one."""
    if free:
        index = heapq.heappop(free)
        pool[index] = item
        return index
    pool.append(item)
    return len(pool) - 1


def _counters_to(counters: list[list[list[int]]], threads: int, index: int) -> list[list[list[int]]]:
    """The per-VIP counters, made on the first VIP and grown to hold ``index``."""
    if not counters:
        return [[[0] * (index + 1) for _ in range(threads)] for _ in COUNTER_NAMES]
    for c in counters:
        for per_thread in c:
            if len(per_thread) <= index:
                per_thread.extend([0] * (index + 1 - len(per_thread)))
    return counters


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
        self.free_vips: list[int] = []  # heaps of freed pool slots
        self.free_ases: list[int] = []
        self.ases: list[AppServer | None] = [AppServer(0, 0, bytes(16), used=False)]
        self.counters: list[list[list[int]]] = []  # [counter][thread][vip index], created on the first VIP
        self.flows = FlowTables(self)
        self.fib = Fib(self.threads)  # the VIPs' FIB entries and their route counters
        self._dpos: dict[bytes, int] = {}  # AS address -> its DPO index, for the CLI
        self._first_dpo = 14 if self.weights else 12  # what a fresh VPP of each generation hands out
        self.collector = Collector(self)

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
            self.flows.clear()  # each worker rebuilds its table: established flows lose stickiness
        self.gc(all_vips=True)
        return OK

    # --- VIP keys ---------------------------------------------------------------
    def vip_key(self, af: int, raw16: bytes, length: int) -> tuple[bytes, int]:
        """API prefix -> (ip46, internal plen), per flavour; raises CrashRefused."""
        cached = self._keys.get((af, raw16, length))
        if cached is not None:
            return cached
        key = api_prefix_key(af, raw16, length, self.weights)
        if len(self._keys) > 65536:
            self._keys.clear()
        self._keys[(af, raw16, length)] = key
        return key

    def find_vip(self, prefix: bytes, plen: int, protocol: int, port: int) -> Vip | None:
        if port == 0:
            protocol = 255
        return self._by_key.get((prefix, plen, protocol, port))

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
        vtype = vip_type_for(self.weights, v4, encap)
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
        index = _place(self.vips, self.free_vips, None)
        vip = Vip(
            index, prefix, plen, protocol, port, vtype, new_length, src_ip_sticky,
            dscp & 0x3F if vtype is VipType.IP4_L3DSR else 0, srv_type if vtype.is_nat else 0,
            target_port if vtype.is_nat else 0, last_gc=self.now(),
        )  # fmt: skip
        vip.table = [0] * new_length
        self.vips[index] = vip
        self._by_key[vip.key] = vip
        self.fib.vip_added(prefix, plen)
        self.counters = _counters_to(self.counters, self.threads, index)
        for c in self.counters:  # a new VIP in a slot starts from zero
            for per_thread in c:
                per_thread[index] = 0
        return OK

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
        self.fib.vip_removed(vip.prefix, vip.plen)
        vip.dirty = False
        refill(vip, self.ases, self.weights)  # no AS in use: every bucket points at AS 0
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
        self.collector.after_config(vip)
        existing = self._find_as(vip, addr16)
        if existing is not None:  # removed but not collected yet: revived
            existing.used = True
            existing.weight = weight
            existing.last_used = 0.0
            if flush:
                self._flush_as(existing)
        else:
            index = _place(self.ases, self.free_ases, None)
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
        self.collector.after_config(vip)
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
            self.flows.forget(lambda v, _: v == vip.index)
        return OK  # always 0, even for an unknown VIP (the lookup result is overwritten)

    def _flush_as(self, a: AppServer) -> None:
        self.flows.forget(lambda _, asi: asi == a.index)

    def _rebuild(self, vip: Vip) -> None:
        # VPP recomputes at once, in C; here the fill waits until a dump, the CLI or
        # traffic needs it, so a burst of weight changes costs one fill.
        vip.dirty = True

    def refresh(self, vip: Vip) -> None:
        """Bring the VIP's new-flow table up to date (after changes: see _rebuild)."""
        if vip.dirty:
            vip.dirty = False
            refill(vip, self.ases, self.weights)

    def gc(self, all_vips: bool = False) -> None:
        """The lb-gc-process (master only, every GC interval); ``all_vips`` for lb_conf (gc.py)."""
        self.collector.run(all_vips)

    def traffic(self, vip: Vip, flows: int, packets: int, seed: int = 0) -> dict[str, int]:
        """Push ``flows`` flows of ``packets`` packets each through the VIP's dataplane (flows.py)."""
        self.refresh(vip)
        return self.flows.traffic(vip, flows, packets, seed)

    # --- views --------------------------------------------------------------------------
    def live_vips(self) -> list[Vip]:
        return [v for v in self.vips[1:] if v is not None and (not v.deleted or not self.weights)]

    def listed_vips(self) -> list[Vip]:
        """What the CLI lists: every VIP but the placeholder, deleted ones until they are freed."""
        return [v for v in self.vips[1:] if v is not None]

    def dpo_of(self, address: bytes) -> int:
        """The load-balance DPO an AS's traffic is stacked on: one per next-hop address."""
        dpo = self._dpos.get(address)
        if dpo is None:
            dpo = self._dpos[address] = self._first_dpo + len(self._dpos)
        return dpo

    def ases_of(self, vip: Vip) -> list[AppServer]:
        self.refresh(vip)
        return [a for a in (self.ases[i] for i in vip.ases) if a is not None]

    def vip_counters(self, index: int) -> dict[str, int]:
        if not self.counters or index >= len(self.counters[0][0]):
            return {name: 0 for name in COUNTER_NAMES}
        return {name: sum(t[index] for t in self.counters[c]) for c, name in enumerate(COUNTER_NAMES)}


__all__ = [
    "LbPlugin",
    "OK",
    "NO_SUCH_ENTRY",
    "INVALID_VALUE",
    "INVALID_MEMORY_SIZE",
    "INVALID_ARGUMENT",
    "VALUE_EXIST",
    "INVALID_ADDRESS_FAMILY",
    "ERROR_NAMES",
    "Encap",
    "VipType",
    "CrashRefused",
    "V4_PREFIX",
    "ip46",
    "is_ip4",
    "mask",
    "show_address",
    "AppServer",
    "Vip",
    "Conf",
    "COUNTER_NAMES",
    "maglev_table",
    "flow_hash",
]
