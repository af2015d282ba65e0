"""The VIPs' new-flow tables as the control plane sees them. Pure.

Pure: no Twisted, no grpc. What VPP's table holds is worked out with ``lbtable`` from
what VPP says it holds (the ASes in use and their weights as read back, never the
config): the buckets of each AS, the table's digest for comparing routers, and how far
the bucket shares are from the weight shares the config asks for (weight fidelity).
The weight scale each pool is programmed with is chosen here too, from the config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .. import lbtable
from ..config import Config, Frontend
from ..config.semantics import MAX_TABLE_LENGTH
from .desired import DesiredVip, IPAddress
from .plan import ObservedVip, observed_table

ScaleKey = tuple[str, int]  # (frontend, pool index)


def pool_entries(fe: Frontend, cfg: Config, pool: int) -> tuple[lbtable.Entry, ...]:
    """A pool's backends at their configured weights, as the fill takes them."""
    return lbtable.entries((cfg.backends[m.backend].address, m.weight) for m in fe.pools[pool].members if m.weight > 0)


def weight_scale(fe: Frontend, cfg: Config, pool: int) -> int:
    """The scale (percent) a pool's weights are given to VPP at (100: as configured)."""
    if not fe.fit_weights:
        return 100
    return lbtable.fit_scale(pool_entries(fe, cfg, pool), fe.new_flows_table_length)


def weight_scales(cfg: Config) -> dict[ScaleKey, int]:
    """Every pool's scale (the fit costs up to a few ms a pool)."""
    return {(name, i): weight_scale(fe, cfg, i) for name, fe in cfg.frontends.items() for i in range(len(fe.pools))}


_last_scales: list[tuple[Config, dict[ScaleKey, int]]] = []  # newest first


def scales_of(cfg: Config) -> Mapping[ScaleKey, int]:
    """``weight_scales`` of the config, worked out once per config. The last two are kept
    (the running one and one a reload preview tries), compared by identity, cheaply."""
    for kept, scales in _last_scales:
        if kept is cfg:
            return scales
    scales = weight_scales(cfg)
    _last_scales[:] = [(cfg, scales), *_last_scales[:1]]
    return scales


@dataclass(frozen=True)
class FidelityWarning:
    frontend: str
    pool: str
    length: int
    error: float  # worst AS's |bucket share - weight share|
    honouring_length: int | None  # the smallest table length that would honour them

    def __str__(self) -> str:
        better = (
            f"new-flows-table-length {self.honouring_length} would"
            if self.honouring_length
            else "no table length VPP allows would"
        )
        return (
            f"frontend {self.frontend} pool {self.pool}: VPP cannot honour the weights within 1 percentage "
            f"point at new-flows-table-length {self.length} (worst backend off by {100 * self.error:.1f} "
            f"points); {better}"
        )


Verdict = tuple[float, "int | None"]  # a pool's error as programmed, the length that would honour it
_verdicts: dict[ScaleKey, tuple[int, Verdict]] = {}  # the last config's, by the hash of what they came from


def fidelity_warnings(cfg: Config) -> list[FidelityWarning]:
    """Pools whose configured weights VPP's table cannot honour within 1 point, as programmed.

    A reload checks every pool again and most are as they were (10,000 backends: 0.1 s),
    so each pool's verdict is kept, by the hash of its entries, length, scale and fit: a
    collision would cost a stale warning, and only the hash is held, not the entries."""
    out = []
    scales = scales_of(cfg)
    kept: dict[ScaleKey, tuple[int, Verdict]] = {}
    for name, fe in cfg.frontends.items():
        length = fe.new_flows_table_length
        if length <= 0 or length & (length - 1):
            continue
        for i, pool in enumerate(fe.pools):
            entries, scale = pool_entries(fe, cfg, i), scales[name, i]
            mark = hash((entries, length, scale, fe.fit_weights))
            was = _verdicts.get((name, i))
            err, honouring = (
                was[1] if was and was[0] == mark else _pool_fidelity(entries, length, scale, fe.fit_weights)
            )
            kept[name, i] = (mark, (err, honouring))
            if err > lbtable.WARN_ERROR:
                out.append(FidelityWarning(name, pool.name, length, err, honouring))
    _verdicts.clear()
    _verdicts.update(kept)
    return out


def _pool_fidelity(entries: tuple[lbtable.Entry, ...], length: int, scale: int, fit: bool) -> Verdict:
    err = programmed_error(entries, length, scale)
    return err, (_honouring(fit, entries, length) if err > lbtable.WARN_ERROR else None)


def programmed_error(entries: tuple[lbtable.Entry, ...], length: int, scale: int) -> float:
    programmed = [(a, lbtable.programmed_weight(w, scale)) for a, w in entries]
    return lbtable.share_error([w for _, w in entries], lbtable.bucket_counts(programmed, length))


def _honouring(fit: bool, entries: tuple[lbtable.Entry, ...], length: int) -> int | None:
    n = length * 2
    while n <= MAX_TABLE_LENGTH:
        scale = lbtable.fit_scale(entries, n) if fit else 100
        if programmed_error(entries, n, scale) <= lbtable.WARN_ERROR:
            return n
        n *= 2
    return None


@dataclass(frozen=True)
class AsShare:
    address: IPAddress
    backend: str  # "" for an AS no backend of the frontend has
    buckets: int
    bucket_share: float
    weight_share: float  # of the weights the config asks for now (effective weights)
    vpp_weight: int | None  # as VPP holds it (None: this VPP has no weights)


@dataclass(frozen=True)
class VipTable:
    """One VIP's table as VPP holds it, and how it compares with what the config asks."""

    digest: str
    length: int
    weights: bool  # this VPP applies weights
    shares: tuple[AsShare, ...]  # by address
    error: float  # the worst AS's |bucket share - weight share|

    def buckets(self) -> dict[IPAddress, int]:
        return {s.address: s.buckets for s in self.shares}


def vip_table(d: DesiredVip, o: ObservedVip, t: lbtable.Table, weights: bool) -> VipTable:
    """``t`` is ``observed_table(o, weights)``; the weight shares come from ``d``."""
    counts = t.counts()
    asked = {a.address: a.weight for a in d.ases}
    backend = {a.address: a.backend for a in d.ases}
    total_w = sum(asked.values())
    addresses = sorted({*asked, *(a.address for a in o.ases.values() if a.used)}, key=lambda a: (a.version, int(a)))
    shares = []
    err = 0.0
    for addr in addresses:
        n = counts.get(lbtable.ip46(addr), 0)
        b_share = n / t.length
        w_share = asked.get(addr, 0) / total_w if total_w else 0.0
        seen = o.ases.get(addr)
        vpp_weight = seen.weight if seen is not None and seen.used else (0 if weights else None)
        shares.append(AsShare(addr, backend.get(addr, ""), n, b_share, w_share, vpp_weight))
        if total_w and any(counts.values()):
            err = max(err, abs(b_share - w_share))
    return VipTable(t.digest(), t.length, weights, tuple(shares), err)


def model_mismatches(o: ObservedVip) -> list[tuple[IPAddress, int, int]]:
    """ASes whose buckets as VPP printed them differ from the model's fill of the same
    ASes: (address, VPP's, the model's). Never expected; if it happens, the previews and
    digests of this VPP build cannot be trusted, and the log says so."""
    if all(a.buckets is None for a in o.ases.values()):
        return []  # not printed by VPP (a sync's own record of what it changed): nothing to compare
    t = o.new_flow_table()
    if t is None:
        return []
    counts = t.counts()
    out = []
    for a in o.ases.values():
        if a.used and a.buckets is not None:
            n = counts.get(lbtable.ip46(a.address), 0)
            if n != a.buckets:
                out.append((a.address, a.buckets, n))
    return out


__all__ = [
    "AsShare",
    "FidelityWarning",
    "VipTable",
    "fidelity_warnings",
    "observed_table",
    "vip_table",
    "weight_scale",
    "weight_scales",
]
