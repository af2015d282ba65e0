"""Reconciliation plans: desired VIPs + what VPP holds -> the ordered operations. Pure.

Pure. The executor (vppclient.py) sends them; the same planner serves full
syncs (which also remove VIPs that are not desired) and per-VIP syncs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Union

from ..config import Encap
from ..lbtable import Table, table_of
from .desired import DesiredAS, DesiredVip, IPAddress, NatArgs, VipKey

KEEP = 0xFFFFFFFF  # lb_conf: keep the current value


@dataclass(frozen=True)
class ObservedAS:
    address: IPAddress
    weight: int | None  # None: this VPP has no weights
    used: bool
    buckets: int | None = None  # new-flow table buckets, when VPP says


@dataclass
class ObservedVip:
    key: VipKey
    encap: Encap | None
    src_ip_sticky: bool | None  # None: unknown
    table_length: int | None  # None: unknown
    ases: dict[IPAddress, ObservedAS] = field(default_factory=dict)
    dscp: int | None = None  # l3dsr (None: not one, or unknown)
    nat: NatArgs | None = None  # nat4/nat6 (None: not one, or unknown)
    weights: bool | None = None  # whether this VPP has weights (snapshots say; None: no table worked out)
    table: Table | None = None  # new_flow_table()'s, once worked out

    def new_flow_table(self) -> Table | None:
        """The new-flow table VPP holds for these ASes (None: length or generation unknown),
        worked out on first use and kept: a copy is replaced, never changed, after a sync."""
        if self.table is None and self.weights is not None:
            self.table = observed_table(self, self.weights)
        return self.table

    def used(self) -> list[ObservedAS]:
        return by_address(a for a in self.ases.values() if a.used)


def by_address(ases: Iterable[ObservedAS]) -> list[ObservedAS]:
    return sorted(ases, key=lambda a: (a.address.version, int(a.address)))


def observed_table(o: ObservedVip, weights: bool) -> Table | None:
    """The table VPP holds for a VIP as read back (None: its length is not known)."""
    length = o.table_length
    if not length or length & (length - 1):
        return None
    ases = {a.address: (a.weight or 0) if weights else 1 for a in o.ases.values() if a.used}
    return table_of(ases, length, weights)


@dataclass(frozen=True)
class LbConf:
    ip4: str
    ip6: str
    buckets: int
    timeout: int


@dataclass(frozen=True)
class SetConf:
    conf: LbConf


@dataclass(frozen=True)
class AddVip:
    vip: DesiredVip


@dataclass(frozen=True)
class DelVip:
    key: VipKey
    frontend: str = ""


@dataclass(frozen=True)
class AddAS:
    key: VipKey
    address: IPAddress
    weight: int
    flush: bool = False
    frontend: str = ""


@dataclass(frozen=True)
class DelAS:
    key: VipKey
    address: IPAddress
    flush: bool
    frontend: str = ""


@dataclass(frozen=True)
class SetWeight:
    key: VipKey
    address: IPAddress
    weight: int
    flush: bool
    frontend: str = ""


Op = Union[SetConf, AddVip, DelVip, AddAS, DelAS, SetWeight]
Applied = dict[tuple[VipKey, IPAddress], tuple[int, bool]]  # last (weight, flush) sent per AS


def immutable_differs(d: DesiredVip, o: ObservedVip) -> str | None:
    """Why the VIP must be deleted and created again (VPP has no modify), or None."""
    if o.encap is not None and o.encap is not d.encap:
        return f"encap {o.encap.value} -> {d.encap.value}"
    if o.src_ip_sticky is not None and o.src_ip_sticky != d.src_ip_sticky:
        return f"src-ip-sticky {o.src_ip_sticky} -> {d.src_ip_sticky}"
    if o.table_length and o.table_length != d.table_length:
        return f"new-flows-table-length {o.table_length} -> {d.table_length}"
    if d.dscp is not None and o.dscp is not None and o.dscp != d.dscp:
        return f"dscp {o.dscp} -> {d.dscp}"
    if d.nat is not None and o.nat is not None and o.nat != d.nat:
        return f"nat {o.nat.service} target-port {o.nat.target_port} -> {d.nat.service} target-port {d.nat.target_port}"
    return None


def _present(a: DesiredAS, weights: bool) -> bool:
    """Without weights (VPP <= 26.06) a backend at weight 0 is not programmed at all."""
    return weights or a.weight > 0


def _create(d: DesiredVip, weights: bool) -> list[Op]:
    ops: list[Op] = [AddVip(d)]
    for a in d.ases:
        if _present(a, weights):
            ops.append(AddAS(d.key, a.address, d.vpp_weight(a.weight), False, d.frontend))
    return ops


def _remove(o: ObservedVip, frontend: str) -> list[Op]:
    ops: list[Op] = [DelAS(o.key, a.address, True, frontend) for a in o.used()]
    ops.append(DelVip(o.key, frontend))
    return ops


def plan_vip(
    d: DesiredVip,
    o: ObservedVip | None,
    weights: bool,
    applied: Applied,
    explicit_flush: Iterable[IPAddress] = (),
) -> tuple[list[Op], str | None]:
    """Operations for one VIP, and the reason when it is recreated."""
    if o is None:
        return _create(d, weights), None
    why = immutable_differs(d, o)
    if why is not None:
        return _remove(o, d.frontend) + _create(d, weights), why
    ops: list[Op] = []
    # An address's hash is Python (ipaddress, 0.5 us): hashed four times an AS, it was half
    # of a full sync's plan, on the VPP thread, which holds the GIL from the reactor meanwhile.
    # So no lookup where no flush is asked, and only the few ASes removed are sorted.
    flush_now = set(explicit_flush)
    wanted = {a.address for a in d.ases}
    for a in d.ases:
        current = o.ases.get(a.address)
        in_use = current is not None and current.used
        asked = bool(flush_now) and a.address in flush_now  # a flush the operator asked for
        if weights:
            w = d.vpp_weight(a.weight)
            if not in_use:
                ops.append(AddAS(d.key, a.address, w, False, d.frontend))
            elif current is not None and current.weight != w:
                flush = (a.flush and w == 0) or asked
                ops.append(SetWeight(d.key, a.address, w, flush, d.frontend))
            elif asked:
                ops.append(SetWeight(d.key, a.address, w, True, d.frontend))
            elif a.weight == 0 and a.flush and applied.get((d.key, a.address)) != (0, True):
                # Flush whenever requested, not only on the weight edge: a backend drained by
                # failover (0, no flush) and then disabled must still lose its flows.
                ops.append(SetWeight(d.key, a.address, 0, True, d.frontend))
        elif a.weight > 0 and not in_use:
            ops.append(AddAS(d.key, a.address, 100, False, d.frontend))
        elif a.weight == 0 and in_use:
            ops.append(DelAS(d.key, a.address, a.flush, d.frontend))
        elif in_use and asked:
            ops.append(DelAS(d.key, a.address, True, d.frontend))
            ops.append(AddAS(d.key, a.address, 100, False, d.frontend))
    for extra in by_address(a for a in o.ases.values() if a.used and a.address not in wanted):  # few, sorted
        if not d.drain:
            ops.append(DelAS(d.key, extra.address, True, d.frontend))
        elif extra.address in d.remove or not weights:
            # drained (or, without weights, a drain is a removal): established flows are left be
            ops.append(DelAS(d.key, extra.address, False, d.frontend))
        elif extra.weight != 0:
            # not ours: drained, never flushed (the model times it, see drain.py)
            ops.append(SetWeight(d.key, extra.address, 0, False, d.frontend))
    return ops, None


def plan(
    desired: Iterable[DesiredVip],
    observed: Mapping[VipKey, ObservedVip],
    weights: bool,
    applied: Applied,
    full: bool,
    explicit_flush: Mapping[str, Iterable[IPAddress]] | None = None,
) -> tuple[list[Op], dict[str, str]]:
    """All operations, VIPs in the given order; a full plan also removes VIPs nobody wants."""
    ops: list[Op] = []
    recreated: dict[str, str] = {}
    wanted = set()
    for d in desired:
        wanted.add(d.key)
        vip_ops, why = plan_vip(d, observed.get(d.key), weights, applied, (explicit_flush or {}).get(d.frontend, ()))
        ops += vip_ops
        if why is not None:
            recreated[d.frontend] = why
    if full:
        for key, o in observed.items():
            if key not in wanted:
                ops += _remove(o, "")
    return ops, recreated


def conf_op(want: LbConf, have: LbConf | None) -> SetConf | None:
    """lb_conf only when something differs; buckets only when they differ (a change flushes every flow)."""
    if have == want:
        return None
    buckets = want.buckets if have is None or have.buckets != want.buckets else KEEP
    return SetConf(LbConf(want.ip4, want.ip6, buckets, want.timeout))


def apply_to_model(observed: dict[VipKey, ObservedVip], op: Op, weights: bool) -> None:
    """Keep the cached view of VPP in step with an operation VPP accepted. A change of one AS
    can move every AS's buckets: the VIP's bucket counts as VPP printed them are dropped
    (the table model works them out from the ASes until VPP is read again)."""
    if isinstance(op, AddVip):
        d = op.vip
        observed[d.key] = ObservedVip(d.key, d.encap, d.src_ip_sticky, d.table_length, dscp=d.dscp, nat=d.nat)
        return
    if isinstance(op, DelVip):
        observed.pop(op.key, None)
        return
    vip = observed.get(op.key) if isinstance(op, (AddAS, DelAS, SetWeight)) else None
    if vip is None:
        return
    if isinstance(op, AddAS):
        vip.ases[op.address] = ObservedAS(op.address, op.weight if weights else None, True)
    elif isinstance(op, DelAS):
        if op.address in vip.ases:
            vip.ases[op.address] = ObservedAS(op.address, vip.ases[op.address].weight, False)
    elif isinstance(op, SetWeight):
        vip.ases[op.address] = ObservedAS(op.address, op.weight, True)
    for address, a in vip.ases.items():
        if a.buckets is not None:
            vip.ases[address] = a.__class__(a.address, a.weight, a.used)
