"""The lb plugin's values in the emulator: retvals, encaps and VIP types, addresses,
VIPs, application servers, the conf, the counters' names, the new-flow table fill and
the flow hash. Pure (``lb.py`` is the plugin that holds them, ``flows.py`` its dataplane).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import IntEnum

from .. import lbtable
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


def maglev_table(entries: list[tuple[int, bytes, int]], length: int, weights: bool = True) -> list[int]:
    """The plugin's fill (lbtable.py, VPP's own: positions as well as counts): ``entries``
    are (AS index, ip46 address, weight); bucket -> AS index, 0 (none) where no AS has a
    weight."""
    owners = lbtable.fill([(addr, w) for _, addr, w in entries], length, weights)
    return [entries[i][0] if i >= 0 else 0 for i in owners]


def flow_hash(src: bytes, dst: bytes, sport: int, dport: int, src_ip_sticky: bool) -> int:
    """A new flow's hash, as node.c computes it (lbtable.flow_hash)."""
    return lbtable.flow_hash(src, dst, sport, dport, src_ip_sticky)


def api_prefix_key(af: int, raw16: bytes, length: int, weights: bool) -> tuple[bytes, int]:
    """An API prefix as the handlers store it: (ip46 address, internal prefix length).

    Master takes the IPv4 length as it is (+96); 26.06 takes it as the ip46 length.
    Raises CrashRefused where a real VPP would abort."""
    if af == 0:  # ADDRESS_IP4
        addr = ip46(raw16[:4])
        if weights:
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


def vip_type_for(weights: bool, v4: bool, encap: int) -> VipType | int:
    """The internal VIP type a handler makes of an API encap (or a retval refusing it)."""
    if not weights:
        # 26.06 compares the network-order enum with host order: only 0 (gre4) is recognised.
        if encap == 0:
            return VipType.IP4_GRE4 if v4 else VipType.IP6_GRE4
        return VipType.IP6_GRE6
    if v4:
        v4_types = {0: VipType.IP4_GRE4, 1: VipType.IP4_GRE6, 2: VipType.IP4_L3DSR, 3: VipType.IP4_NAT4}
        return v4_types.get(encap, INVALID_ADDRESS_FAMILY)  # nat6 (or garbage) on an IPv4 VIP: -97
    # gre6, and silently for l3dsr/nat4 (and garbage) on an IPv6 VIP: ip6-gre6
    return {0: VipType.IP6_GRE4, 4: VipType.IP6_NAT6}.get(encap, VipType.IP6_GRE6)


def refill(vip: Vip, ases: list[AppServer | None], weights: bool) -> None:
    """The VIP's new-flow table from its in-use ASes (with a weight, where VPP has
    weights), and each AS's count of buckets."""
    entries = []
    for i in vip.ases:
        a = ases[i]
        if a is not None and a.used and (a.weight > 0 if weights else True):
            entries.append((a.index, a.address, a.weight if weights else 1))
    vip.table = maglev_table(entries, vip.new_flows_table_length, weights)
    counts: dict[int, int] = {}
    for asi in vip.table:
        counts[asi] = counts.get(asi, 0) + 1
    for i in vip.ases:
        a = ases[i]
        if a is not None:
            a.buckets = counts.get(i, 0)
