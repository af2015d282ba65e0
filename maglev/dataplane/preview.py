"""What a change would do to VPP's new-flow tables, before it is made. Pure.

Pure: no Twisted, no grpc. ``before`` is what VPP holds (the tables of the ASes read back
from it; where maglevd is not connected, what it would program now), ``after`` what the
sync would program once the change is made (the desired VIPs of a forked model, see
``DataplaneModel.fork``). For every VIP that changes: the buckets that change owner,
from which AS to which, against the fewest any fill could move; VIPs created, recreated
(every established flow lost) or removed; ASes that go to weight 0 keeping their flows
(drain) and ASes whose flows are dropped (flush).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from .. import lbtable
from .desired import DesiredVip, IPAddress, VipKey
from .plan import ObservedVip, immutable_differs


def desired_table(d: DesiredVip, weights: bool) -> lbtable.Table:
    """The table a sync of ``d`` gives (weights as VPP is given them)."""
    if weights:
        ases = {a.address: d.vpp_weight(a.weight) for a in d.ases if a.weight > 0}
    else:
        ases = {a.address: 1 for a in d.ases if a.weight > 0}  # 26.06: an AS at 0 is not programmed
    return lbtable.table_of(ases, d.table_length, weights)


@dataclass(frozen=True)
class VipChange:
    frontend: str
    key: VipKey
    before: lbtable.Table | None  # None: VPP does not hold the VIP
    after: lbtable.Table | None  # None: the VIP goes
    moves: Mapping[tuple[bytes | None, bytes | None], int]  # (from AS, to AS) -> buckets, None: no server
    minimum: int  # the fewest buckets any fill could move for the same counts
    recreated: str = ""  # why VPP must delete and create the VIP again: every established flow is lost
    drained: tuple[IPAddress, ...] = ()  # to weight 0 without flush: established flows stay
    flushed: tuple[IPAddress, ...] = ()  # established flows dropped
    removal_in: float | None = None  # the VIP goes: after this many seconds of drain (0: at once)

    @property
    def moved(self) -> int:
        return sum(self.moves.values())

    @property
    def length(self) -> int:
        t = self.after or self.before
        return t.length if t is not None else 0

    @property
    def created(self) -> bool:
        return self.before is None and self.after is not None


def _weights_of(d: DesiredVip | None, o: ObservedVip | None, weights: bool) -> dict[IPAddress, int]:
    if o is not None:
        return {a.address: (a.weight or 0) if weights else 1 for a in o.ases.values() if a.used}
    if d is not None:
        return {a.address: d.vpp_weight(a.weight) if weights else 1 for a in d.ases if a.weight > 0}
    return {}


def vip_change(
    frontend: str,
    now: DesiredVip | None,
    after: DesiredVip | None,
    observed: ObservedVip | None,
    weights: bool,
    removal_in: float | None = None,
) -> VipChange | None:
    """One VIP's change (None: nothing changes for it). ``observed`` None: not in VPP, or
    not connected (``now`` stands for VPP then)."""
    some = after or now
    if some is None:
        return None
    key = some.key
    held = observed.new_flow_table() if observed is not None else None
    if held is not None:
        before: lbtable.Table | None = held
    elif now is not None:
        before = desired_table(now, weights)
    else:
        before = None
    table_after = desired_table(after, weights) if after is not None else None
    recreated = ""
    if after is not None and observed is not None:
        recreated = immutable_differs(after, observed) or ""
    elif after is not None and now is not None and now.key == after.key:
        recreated = _immutable(now, after)
    if table_after is None:
        empty = lbtable.table_of({}, before.length, weights) if before is not None else None
        moves = lbtable.moves(before, empty) if before is not None and empty is not None else {}
        minimum = sum(moves.values())
    elif before is None:
        moves, minimum = {}, 0
    else:
        moves = lbtable.moves(before, table_after)
        minimum = lbtable.minimum_moves(_by_length(before, table_after), _by_length(table_after, before))
    was = _weights_of(now, observed, weights)
    drained: list[IPAddress] = []
    flushed: list[IPAddress] = []
    if after is not None:
        for a in after.ases:
            if a.weight == 0 and was.get(a.address, 0) > 0:
                (flushed if a.flush else drained).append(a.address)
    changed = moves or recreated or table_after is None or before is None or drained or flushed
    if not changed:
        return None
    return VipChange(
        frontend, key, before, table_after, moves, minimum, recreated, tuple(drained), tuple(flushed), removal_in
    )


def _by_length(t: lbtable.Table, other: lbtable.Table) -> dict[bytes, int]:
    """Counts scaled to the longer of two tables (a flow's bucket repeats in the longer)."""
    factor = max(1, other.length // t.length)
    return {a: n * factor for a, n in t.counts().items()}


def _immutable(now: DesiredVip, after: DesiredVip) -> str:
    o = ObservedVip(now.key, now.encap, now.src_ip_sticky, now.table_length, dscp=now.dscp, nat=now.nat)
    return immutable_differs(after, o) or ""


def preview(
    now: Mapping[str, DesiredVip],
    after: Mapping[str, DesiredVip],
    observed: Mapping[VipKey, ObservedVip] | None,
    weights: bool,
    removed: Iterable[tuple[str, DesiredVip, float]] = (),
) -> list[VipChange]:
    """Every VIP the change touches, in ``after``'s order then the removed ones.
    ``observed`` None: not connected (``now`` stands for VPP). ``removed``: frontends the
    change removes, with the seconds their VIP drains first."""
    out = []
    seen_keys = set()
    for name, d in after.items():
        o = observed.get(d.key) if observed is not None else None
        was = now.get(name)
        if observed is not None and o is None:
            was = None  # VPP does not hold it: created
        change = vip_change(name, was, d, o, weights)
        seen_keys.add(d.key)
        if change is not None:
            out.append(change)
        if was is not None and was.key != d.key:  # the VIP's address, protocol or port changes
            old = vip_change(name, was, None, observed.get(was.key) if observed is not None else None, weights, 0)
            if old is not None:
                out.append(old)
    for name, d, drain in removed:
        if d.key in seen_keys:
            continue
        o = observed.get(d.key) if observed is not None else None
        change = vip_change(name, d, None, o, weights, drain)
        if change is not None:
            out.append(change)
    return out


class PreviewInputs(NamedTuple):
    """What ``preview`` needs, gathered on the reactor thread; the fills can then run anywhere."""

    now: Mapping[str, DesiredVip]
    after: Mapping[str, DesiredVip]
    observed: Mapping[VipKey, ObservedVip] | None
    weights: bool
    removed: list[tuple[str, DesiredVip, float]]


@dataclass(frozen=True)
class Share:
    address: bytes
    backend: str
    buckets: int
    bucket_share: float
    weight_share: float
    vpp_weight: int


def shares(t: lbtable.Table, d: DesiredVip | None, weights: bool) -> list[Share]:
    """Each AS's share of ``t`` beside the share its effective weight in ``d`` asks."""
    counts = t.counts()
    asked = {lbtable.ip46(a.address): (a.weight, a.backend, d.vpp_weight(a.weight)) for a in d.ases} if d else {}
    total = sum(w for w, _, _ in asked.values())
    out = []
    for addr in sorted({*counts, *asked}):
        w, backend, vpp = asked.get(addr, (0, "", 0))
        n = counts.get(addr, 0)
        out.append(Share(addr, backend, n, n / t.length, w / total if total else 0.0, vpp if weights else -1))
    return out


def show(address: bytes | None) -> str:
    return lbtable.show_address(address) if address is not None else "no server"


__all__ = ["PreviewInputs", "Share", "VipChange", "desired_table", "preview", "shares", "vip_change"]
