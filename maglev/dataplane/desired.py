"""What VPP should hold: config + backend states + operator weights -> VIPs and ASes. Pure.

Pure: no Twisted, no grpc, no VPP. The single source of truth for effective
weights, flush flags, pool failover, frontend state and AS order.
"""

from __future__ import annotations

import ipaddress
import weakref
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from itertools import repeat
from typing import NamedTuple

from ..config import Config, Encap, Frontend, effective_encap
from ..health.report import DOWN as DOWN_REPORT
from ..health.report import DRAIN, MAINT, READY, Report, scaled
from ..lbtable import programmed_weight
from ..states import BackendState, FrontendState
from .ramp import ramp_weight

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The backend states, short (the enum is a str: plain strings from a test's table match).
UP, DOWN, UNKNOWN = BackendState.UP, BackendState.DOWN, BackendState.UNKNOWN
PAUSED, DISABLED, REMOVED = BackendState.PAUSED, BackendState.DISABLED, BackendState.REMOVED
NO_REPORTS: Mapping[str, Report] = {}

WeightOverrides = Mapping[tuple[str, str, str], int]  # (frontend, pool, backend) -> weight


class DesiredAS(NamedTuple):
    """A tuple, not a frozen dataclass: a VIP of 100 ASes is rebuilt on every transition of
    one of them, and a dataclass took four times as long to build."""

    address: IPAddress
    weight: int
    flush: bool  # when the weight is 0: also drop established flows
    backend: str
    pool: str


class NatArgs(NamedTuple):
    """A NAT VIP's arguments as VPP holds them."""

    service: str  # "clusterip" or "nodeport" (then the VIP's port is the node port)
    target_port: int


PROTOCOL_NAMES = {6: "tcp", 17: "udp", 255: "any"}  # VPP's protocol numbers, as the config spells them


@dataclass(frozen=True)
class VipKey:
    address: IPAddress
    protocol: int  # 6, 17 or 255
    port: int

    def __str__(self) -> str:
        proto = PROTOCOL_NAMES.get(self.protocol, str(self.protocol))
        return f"{self.address}/{self.address.max_prefixlen} {proto}:{self.port}"


@dataclass(frozen=True)
class DesiredVip:
    frontend: str
    key: VipKey
    encap: Encap
    src_ip_sticky: bool
    table_length: int
    ases: tuple[DesiredAS, ...]  # IPv4 before IPv6, numerically ascending
    dscp: int | None = None  # l3dsr
    nat: NatArgs | None = None  # nat4, nat6
    drain: bool = True  # an AS it stops wanting goes to weight 0 first (drain.py); False: removed at once
    remove: frozenset[IPAddress] = frozenset()  # drained ASes to delete now
    weight_scale: int = 100  # percent: VPP is given vpp_weight(weight) (tables.weight_scale)

    def weights(self) -> dict[IPAddress, int]:
        return {a.address: a.weight for a in self.ases}

    def vpp_weight(self, weight: int) -> int:
        """The weight VPP is given for an effective one (scaled so that its table honours them)."""
        return programmed_weight(weight, self.weight_scale)


def effective_weight(state: str, configured: int, active_pool: bool, flush_on_down: bool) -> tuple[int, bool]:
    """(weight, flush) for one backend in one pool."""
    if state == UP:
        return (configured, False) if active_pool else (0, False)
    if state == DOWN:
        return 0, flush_on_down
    if state in (DISABLED, REMOVED):
        return 0, True
    return 0, False  # unknown and paused never flush


def configured_weight(fe: Frontend, pool: str, backend: str, weight: int, overrides: WeightOverrides) -> int:
    return overrides.get((fe.name, pool, backend), weight)


def active_pool(
    fe: Frontend,
    states: Mapping[str, str],
    overrides: WeightOverrides,
    held: Collection[str] = (),
    reports: Mapping[str, Report] = NO_REPORTS,
) -> int:
    """The first pool with a backend that is up with weight > 0, not held out and not
    drained by its own word (0 when there is none)."""
    for i, pool in enumerate(fe.pools):
        for m in pool.members:
            r = reports.get(m.backend)
            if (
                states.get(m.backend) == UP
                and m.backend not in held
                and (r is None or (r.state == READY and r.percent > 0))
                and configured_weight(fe, pool.name, m.backend, m.weight, overrides) > 0
            ):
                return i
    return 0


def reported_weight(
    fe: Frontend, key: tuple[str, str, str], state: str, w: int, flush: bool, r: Report, overrides: WeightOverrides
) -> tuple[int, bool]:
    """(weight, flush) once the backend's own word (health/report.py) is applied. An
    operator's pause and weight win: the report changes neither."""
    if state == PAUSED:
        return w, flush
    if r.state == MAINT:
        return 0, True
    if r.state == DOWN_REPORT and w > 0:
        return 0, fe.flush_on_down
    if r.state == DRAIN and w > 0:
        return 0, False
    if w > 0 and key not in overrides:
        return scaled(w, r.percent), flush
    return w, flush


def vip_key(fe: Frontend) -> VipKey:
    """The frontend's VIP in VPP: from the config alone, whatever the backends' states."""
    return VipKey(fe.address, fe.protocol.ip_proto, fe.port)


NOT_RAMPING: Mapping[str, int] = {}
UNSCALED: Mapping[tuple[str, int], int] = {}


class _Member(NamedTuple):
    """A pool member as desired_vip reads it, worked out once for a config."""

    active_index: int  # its pool's
    pool: str
    backend: str
    weight: int  # configured
    address: IPAddress
    key: tuple[str, str, str]  # (frontend, pool, backend): its weight override's, its report's
    slow_start: float


class _Layout(NamedTuple):
    """What of a frontend's VIP follows from its config alone: its members in VPP's order of
    ASes, and the encap their families give; and the VIP last worked out where states alone
    decide (``last``: the members' states, the scales, the VIP; or empty)."""

    frontend: Frontend
    members: tuple[_Member, ...]
    names: tuple[str, ...]  # the members' backends, in that order
    encap: Encap
    last: list[tuple[tuple[str, ...], Mapping[tuple[str, int], int], DesiredVip]]


# Layouts by config (by identity: a config is a frozen tree, made anew by each load), then by
# frontend: a VIP of 100 ASes is rebuilt on every transition of one of them and on every
# ListFrontends, and sorting its members and working out their keys was half of that.
_LAYOUTS: dict[int, dict[str, _Layout]] = {}


def _layout(fe: Frontend, cfg: Config) -> _Layout:
    by_name = _LAYOUTS.get(id(cfg))
    if by_name is None:
        by_name = _LAYOUTS[id(cfg)] = {}
        weakref.finalize(cfg, _LAYOUTS.pop, id(cfg), None)
    held = by_name.get(fe.name)
    if held is not None and held.frontend is fe:
        return held
    members = []
    for i, pool in enumerate(fe.pools):
        for m in pool.members:
            backend = cfg.backends[m.backend]
            members.append(
                _Member(
                    i,
                    pool.name,
                    m.backend,
                    m.weight,
                    backend.address,
                    (fe.name, pool.name, m.backend),
                    fe.slow_start_of(pool, backend),
                )  # fmt: skip
            )
    members.sort(key=lambda m: (m.address.version, int(m.address)))  # stable: pool order among equals
    families = {m.address.version for m in members}
    encap = effective_encap(fe, families.pop() if len(families) == 1 else fe.address.version)
    assert encap is not None
    layout = by_name[fe.name] = _Layout(fe, tuple(members), tuple(m.backend for m in members), encap, [])
    return layout


def desired_vip(
    fe: Frontend,
    cfg: Config,
    states: Mapping[str, str],
    overrides: WeightOverrides,
    ramping: Mapping[str, int] = NOT_RAMPING,
    held: Collection[str] = (),
    scales: Mapping[tuple[str, int], int] = UNSCALED,
    reports: Mapping[str, Report] = NO_REPORTS,
) -> DesiredVip:
    """``scales``: each (frontend, pool index)'s weight scale (tables.weight_scales; none: 100);
    ``ramping``: backends in their slow start, and the whole seconds they are into it (ramp.py);
    ``held``: backends kept out of their pools (weight 0, no flush) whatever their state (dampening);
    ``reports``: what backends say of themselves (their agents: drain, maint, a weight)."""
    layout = _layout(fe, cfg)
    # With no override, ramp, hold or report anywhere (the common case) the VIP is a function
    # of its members' states: every ListFrontends and every transition of one of its backends
    # asks for it again, and a read of 100 VIPs found nearly all as they were.
    plain = not (overrides or ramping or held or reports)
    if plain:
        seen = tuple(map(states.get, layout.names, repeat(UNKNOWN)))
        if layout.last:
            kept_states, kept_scales, vip = layout.last[0]
            if kept_scales is scales and kept_states == seen:
                return vip
    active = active_pool(fe, states, overrides, held, reports)
    flush_on_down = fe.flush_on_down
    ases: list[DesiredAS] = []
    for m in layout.members:
        weight = overrides.get(m.key, m.weight) if overrides else m.weight
        state = states.get(m.backend, UNKNOWN)
        w, flush = effective_weight(state, weight, m.active_index == active, flush_on_down)
        if reports:
            r = reports.get(m.backend)
            if r is not None:
                w, flush = reported_weight(fe, m.key, state, w, flush, r, overrides)
        if w > 0 and m.backend in held:
            w = 0
        elif w > 0 and m.backend in ramping:
            w = ramp_weight(w, ramping[m.backend], m.slow_start)
        ases.append(DesiredAS(m.address, w, flush, m.backend, m.pool))
    encap = layout.encap
    vip = DesiredVip(
        fe.name,
        vip_key(fe),
        encap,
        fe.src_ip_sticky,
        fe.new_flows_table_length,
        tuple(ases),
        fe.dscp if encap is Encap.L3DSR else None,
        nat_args(fe) if encap.needs_port else None,
        fe.drain_for(cfg.lb) > 0,
        weight_scale=scales.get((fe.name, active), 100),
    )
    if plain:
        layout.last[:] = [(seen, scales, vip)]
    return vip


def nat_args(fe: Frontend) -> NatArgs:
    service = fe.nat_service.value if fe.nat_service is not None else "clusterip"
    return NatArgs(service, fe.target_port or 0)


def desired_dataplane(
    cfg: Config,
    states: Mapping[str, str],
    overrides: WeightOverrides,
    ramping: Mapping[str, int] = NOT_RAMPING,
    held: Collection[str] = (),
    scales: Mapping[tuple[str, int], int] = UNSCALED,
    reports: Mapping[str, Report] = NO_REPORTS,
) -> dict[str, DesiredVip]:
    """Every frontend's VIP, in config order."""
    return {
        name: desired_vip(fe, cfg, states, overrides, ramping, held, scales, reports)
        for name, fe in cfg.frontends.items()
    }


def frontend_state(vip: DesiredVip, states: Mapping[str, str]) -> FrontendState:
    """up iff some backend has a weight; unknown iff no backend has a known state; else down."""
    if any(a.weight > 0 for a in vip.ases):
        return FrontendState.UP
    if all(states.get(a.backend, UNKNOWN) == UNKNOWN for a in vip.ases):
        return FrontendState.UNKNOWN
    return FrontendState.DOWN
