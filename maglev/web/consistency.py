"""Cross-router consistency: do the maglevds that serve the same VIP hold the same table?

No Twisted, no grpc (the API's messages only). Two routers that share a VIP by ECMP must
hold the same new-flow table, or a flow ECMP moves from one to the other lands on another
AS. Each maglevd reports its VIPs' table digests (worked out from what its VPP holds);
here the digests of every VIP that more than one maglevd serves are compared, and where
they differ, what differs: ASes one router has and another has not, weights, buckets,
table lengths.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..api.gen.maglev.v1 import maglev_pb2 as pb


def vip_of(fe: pb.FrontendInfo) -> str:
    return f"{fe.address} {fe.protocol}:{fe.port}"


@dataclass
class VipConsistency:
    vip: str
    digests: dict[str, str] = field(default_factory=dict)  # maglevd -> digest
    frontends: dict[str, str] = field(default_factory=dict)  # maglevd -> its frontend's name
    differences: list[str] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        return len(set(self.digests.values())) <= 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "vip": self.vip,
            "consistent": self.consistent,
            "digests": dict(self.digests),
            "frontends": dict(self.frontends),
            "differences": list(self.differences),
        }


def _ases(fe: pb.FrontendInfo) -> dict[str, tuple[int, int]]:
    """address -> (VPP weight, buckets) of the ASes with buckets or a weight in VPP."""
    return {s.address: (s.vpp_weight, s.buckets) for s in fe.table.shares if s.buckets or s.vpp_weight > 0}


def _differences(fes: Mapping[str, pb.FrontendInfo]) -> list[str]:
    out: list[str] = []
    names = list(fes)
    lengths = {n: fe.table.length for n, fe in fes.items()}
    if len(set(lengths.values())) > 1:
        out.append("table length " + ", ".join(f"{n} {length}" for n, length in lengths.items()))
    ases = {n: _ases(fe) for n, fe in fes.items()}
    every = sorted({a for x in ases.values() for a in x})
    for a in every:
        have = [n for n in names if a in ases[n]]
        if len(have) < len(names):
            missing = [n for n in names if n not in have]
            out.append(f"AS {a}: in {', '.join(have)}, not in {', '.join(missing)}")
            continue
        weights = {n: ases[n][a][0] for n in names}
        if len(set(weights.values())) > 1:
            out.append(f"AS {a}: weight " + ", ".join(f"{n} {w}" for n, w in weights.items()))
    if not out:
        buckets = {n: {a: v[1] for a, v in x.items()} for n, x in ases.items()}
        if len({tuple(sorted(b.items())) for b in buckets.values()}) > 1:
            out.append("same ASes and weights, different buckets (VPP builds that fill differently)")
        else:
            out.append("same ASes, weights and buckets, different bucket positions")
    return out


def compare(daemons: Mapping[str, list[pb.FrontendInfo]]) -> dict[str, VipConsistency]:
    """Every VIP that more than one maglevd holds (a known table), by VIP; a maglevd with no
    table for it (not connected, VIP not in its VPP) is left out of the comparison."""
    by_vip: dict[str, dict[str, pb.FrontendInfo]] = {}
    for daemon, frontends in daemons.items():
        for fe in frontends:
            if fe.HasField("table") and fe.table.known:
                by_vip.setdefault(vip_of(fe), {})[daemon] = fe
    out: dict[str, VipConsistency] = {}
    for vip, fes in by_vip.items():
        if len(fes) < 2:
            continue
        c = VipConsistency(vip, {n: fe.table.digest for n, fe in fes.items()}, {n: fe.name for n, fe in fes.items()})
        if not c.consistent:
            c.differences = _differences(fes)
        out[vip] = c
    return out


__all__ = ["VipConsistency", "compare", "vip_of"]
