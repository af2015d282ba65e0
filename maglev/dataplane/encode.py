"""How lb requests and dump fields are encoded on each VPP generation. Pure.

Master (lb API 1.2.0) takes prefixes as they are and has weights; 26.06 (lb API
1.1.0) takes an IPv4 VIP's length as the internal ip46 length, has no weights and
reports the internal VIP type instead of the API encap (../shared/spec/vpp-lb.md).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ..config import Encap
from .desired import IPAddress, VipKey
from .plan import AddAS, AddVip, DelAS, DelVip, Op, SetConf

ENCAP_API = {Encap.GRE4: 0, Encap.GRE6: 1, Encap.L3DSR: 2, Encap.NAT4: 3, Encap.NAT6: 4}
API_ENCAP = {v: k for k, v in ENCAP_API.items()}
# releases up to 26.06 report the internal lb_vip_type
INTERNAL_ENCAP = {
    0: Encap.GRE6,
    1: Encap.GRE4,
    2: Encap.GRE6,
    3: Encap.GRE4,
    4: Encap.L3DSR,
    5: Encap.NAT4,
    6: Encap.NAT6,
}


def vip_prefix(key: VipKey, fixed: bool) -> dict[str, Any]:
    length = key.address.max_prefixlen
    if key.address.version == 4 and not fixed:
        length = 128  # releases up to 26.06 take the internal ip46 length (96 + 32)
    return {"address": str(key.address), "len": length}


def vip_args(key: VipKey, fixed: bool) -> dict[str, Any]:
    return {"pfx": vip_prefix(key, fixed), "protocol": key.protocol, "port": key.port}


def request_for(op: Op, weights: bool, fixed: bool) -> tuple[str, str, dict[str, Any]]:
    """The message, a description and the arguments for one change."""
    if isinstance(op, SetConf):
        c = op.conf
        args = {"ip4_src_address": c.ip4, "ip6_src_address": c.ip6, "sticky_buckets_per_core": c.buckets}
        return "lb_conf", f"ip4-src {c.ip4} ip6-src {c.ip6}", {**args, "flow_timeout": c.timeout}
    if isinstance(op, AddVip):
        d = op.vip
        args = {
            "encap": ENCAP_API[d.encap],
            "new_flows_table_length": d.table_length,
            "src_ip_sticky": d.src_ip_sticky,
        }
        return "lb_add_del_vip_v2", f"VIP {d.key} ({d.frontend})", {**vip_args(d.key, fixed), **args}
    if isinstance(op, DelVip):
        return "lb_add_del_vip_v2", f"VIP {op.key} (delete)", {**vip_args(op.key, fixed), "is_del": True}
    what = f"AS {op.address} of VIP {op.key}"
    base = {**vip_args(op.key, fixed), "as_address": str(op.address)}
    if isinstance(op, AddAS):
        if weights:
            return "lb_add_del_as_v2", what, {**base, "weight": op.weight, "is_flush": op.flush}
        return "lb_add_del_as", what, base
    if isinstance(op, DelAS):
        name = "lb_add_del_as_v2" if weights else "lb_add_del_as"
        return name, f"{what} (delete)", {**base, "is_del": True, "is_flush": op.flush}
    return "lb_as_set_weight", what, {**base, "weight": op.weight, "is_flush": op.flush}


def plain_address(raw: Any) -> IPAddress:
    """An address from a dump (raw, no type conversion)."""
    if int(raw.af) == 1:
        return ipaddress.IPv6Address(bytes(raw.un.ip6))
    return ipaddress.IPv4Address(bytes(raw.un.ip4)[:4])


def prefix_of(pfx: Any, fixed: bool) -> tuple[IPAddress, int]:
    """A prefix from a dump: 26.06 reports IPv4 lengths as the internal ip46 length."""
    address = plain_address(pfx.address)
    length = int(pfx.len)
    if address.version == 4 and not fixed and length >= 96:
        length -= 96
    return address, length


__all__ = ["API_ENCAP", "ENCAP_API", "INTERNAL_ENCAP", "plain_address", "prefix_of", "request_for", "vip_args"]
