"""How lb requests are encoded on each VPP generation. Pure.

Master (lb API 1.2.0) takes prefixes as they are and has weights; 26.06 (lb API
1.1.0) takes an IPv4 VIP's length as the internal ip46 length and has no weights
(../shared/spec/vpp-lb.md). The CLI's VIP type names map to encaps here too.
"""

from __future__ import annotations

from typing import Any

from ..config import Encap
from .desired import DesiredVip, VipKey
from .plan import AddAS, AddVip, DelAS, DelVip, Op, SetConf

SRV_TYPE = {"clusterip": 0, "nodeport": 1}  # lb_srv_type
# The CLI's VIP type names (lb_vip_type) -> the encap they carry traffic with.
VIP_TYPE_ENCAP = {
    "ip6-gre6": Encap.GRE6,
    "ip6-gre4": Encap.GRE4,
    "ip4-gre6": Encap.GRE6,
    "ip4-gre4": Encap.GRE4,
    "ip4-l3dsr": Encap.L3DSR,
    "ip4-nat4": Encap.NAT4,
    "ip6-nat6": Encap.NAT6,
}
ENCAP_API = {Encap.GRE4: 0, Encap.GRE6: 1, Encap.L3DSR: 2, Encap.NAT4: 3, Encap.NAT6: 4}


def unsupported(vip: DesiredVip, fixed_handlers: bool) -> str | None:
    """Why a VPP whose lb API is the old one (up to 26.06: no lb_conf_get) cannot hold this
    VIP, or None. Its handler honours only encap 0 (gre4): an IPv4 VIP with another encap is
    refused, an IPv6 one silently becomes ip6-gre6 (right only for gre6; vpp-lb.md §8)."""
    if fixed_handlers or vip.encap is Encap.GRE4:
        return None
    if vip.encap is Encap.GRE6 and vip.key.address.version == 6:
        return None
    family = vip.key.address.version
    return f"{vip.encap.value} on an IPv{family} VIP needs lb.api 1.2.0 (VPP after 26.06); this VPP has 1.1.0"


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
        vip: dict[str, Any] = {
            "encap": ENCAP_API[d.encap],
            "new_flows_table_length": d.table_length,
            "src_ip_sticky": d.src_ip_sticky,
        }
        if d.dscp is not None:
            vip["dscp"] = d.dscp
        if d.nat is not None:
            vip["type"] = SRV_TYPE[d.nat.service]
            vip["target_port"] = d.nat.target_port
        return "lb_add_del_vip_v2", f"VIP {d.key} ({d.frontend})", {**vip_args(d.key, fixed), **vip}
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


__all__ = ["ENCAP_API", "SRV_TYPE", "VIP_TYPE_ENCAP", "request_for", "unsupported", "vip_args"]
