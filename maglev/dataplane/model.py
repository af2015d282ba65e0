"""DataplaneModel: what VPP should hold, and why. Pure; lives on the reactor thread.

It holds the running config, reads every backend's state from the health checker's
live read-only mapping (the one source of backend state), and keeps what only the
dataplane knows: the operator's weight overrides, each frontend's state, and the
warm-up's released VIPs. Time comes in as arguments; nothing here does I/O.

Warm-up (restart neutrality): no VPP writes for ``startup-min-delay``; then each VIP is
released once none of its backends is unknown; at ``startup-max-delay`` everything is.
Reloads do not restart it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import NamedTuple

from ..config import AllDown, Config
from ..states import FrontendState
from .dampening import Flaps
from .desired import (
    DOWN,
    UNKNOWN,
    DesiredVip,
    IPAddress,
    VipKey,
    desired_dataplane,
    desired_vip,
    frontend_state,
    vip_key,
)
from .drain import DrainingAS, DrainingVip, Drains
from .encode import unsupported
from .isolation import Held, Isolation
from .plan import LbConf, ObservedVip
from .ramp import Ramps, SlowStarts
from .reports import Reports
from .tables import scales_of

FrontendChange = tuple[str, FrontendState | None, FrontendState]  # name, old (None: first), new


@dataclass(frozen=True)
class SyncJob:
    """One sync, as the reactor decided it."""

    scope: str  # "all" or "vip"
    desired: tuple[DesiredVip, ...]
    reread: bool  # read VPP's state first (full syncs)
    full: bool  # remove VIPs that are not desired
    conf: LbConf
    flush: dict[str, set[IPAddress]]


def all_down(vip: DesiredVip, states: Mapping[str, str]) -> bool:
    """Every backend of every pool is down (disabled or paused ones are not: an operator's choice)."""
    return all(states.get(a.backend) == DOWN for a in vip.ases)


def check_member(cfg: Config, frontend: str, pool: str, backend: str) -> None:
    """Raises KeyError naming what of the three does not exist."""
    fe = cfg.frontends.get(frontend)
    if fe is None:
        raise KeyError(f"no such frontend {frontend!r}")
    p = next((p for p in fe.pools if p.name == pool), None)
    if p is None:
        raise KeyError(f"frontend {frontend!r} has no pool {pool!r}")
    if backend not in p.backend_names:
        raise KeyError(f"pool {pool!r} of frontend {frontend!r} has no backend {backend!r}")


def lb_conf(cfg: Config) -> LbConf:
    lb = cfg.lb
    return LbConf(
        str(lb.ipv4_src_address or "0.0.0.0"),
        str(lb.ipv6_src_address or "::"),
        lb.sticky_buckets_per_core,
        int(lb.flow_timeout),
    )


class Reloaded(NamedTuple):
    """What a reload did to the model: the frontends the connected VPP newly cannot hold,
    with why, and every VIP the new config wants at that moment."""

    unsupported: list[tuple[str, str]]
    desired: dict[str, DesiredVip]


class DataplaneModel:
    def __init__(self, config: Config, states: Mapping[str, str]) -> None:
        self.config = config
        self.live_states = states  # the health checker's
        self._overrides: dict[tuple[str, str, str], int] = {}
        self._frontend_states: dict[str, FrontendState] = {}
        self.overrides = MappingProxyType(self._overrides)
        self.frontend_states = MappingProxyType(self._frontend_states)
        self.released: set[str] = set()
        # The warm-up's unreleased VIPs and their backends (looked at after every transition)
        self._waiting: tuple[Config | None, dict[str, tuple[str, ...]]] = (None, {})
        self.warm = False
        self.started_at = 0.0
        self.fixed_handlers: bool | None = None  # the connected VPP's lb API (None: none seen yet)
        self._unsupported: dict[str, str] = {}  # frontend -> why the connected VPP cannot hold it
        self.unsupported = MappingProxyType(self._unsupported)
        self.drains = Drains()
        self.ramps = Ramps()
        self.slow_starts = SlowStarts()
        self.flaps = Flaps()
        self.isolation = Isolation()
        self.reports = Reports()  # what backends say of themselves (agents, exec dynamic weights)
        self._last_up: dict[str, DesiredVip] = {}  # each frontend's last VIP with a weight (on-all-down: keep)
        self.reload_drains: tuple[list[DrainingAS | DrainingVip], list[str]] = ([], [])  # the last reload's

    @property
    def states(self) -> Mapping[str, str]:
        """The states the dataplane follows: the health checker's, but for backends the
        checker-isolation guard holds."""
        held = self.isolation.held
        return Held(self.live_states, held) if held else self.live_states

    def fork(self, states: Mapping[str, str]) -> DataplaneModel:
        """A copy to try a change on (a preview), following ``states`` (a copy of the health
        checker's to change); nothing done to the copy reaches this model."""
        m = copy.copy(self)
        m.live_states = states
        m._overrides, m._last_up, m.drains = dict(self._overrides), dict(self._last_up), copy.deepcopy(self.drains)
        m.overrides = MappingProxyType(m._overrides)
        m._frontend_states, m._unsupported = dict(self._frontend_states), dict(self._unsupported)
        m.frontend_states, m.unsupported = MappingProxyType(m._frontend_states), MappingProxyType(m._unsupported)
        return m

    # --- what VPP should hold ---------------------------------------------------------
    def desired(self, frontends: Iterable[str] | None = None) -> dict[str, DesiredVip]:
        """The desired VIPs of ``frontends`` (all when None), from current states and overrides."""
        cfg, ramping, held, states = self.config, self.ramps.elapsed, self.flaps.suppressed, self.states
        scales, said = scales_of(cfg), self.reports.effective
        if frontends is None:
            vips = desired_dataplane(cfg, states, self._overrides, ramping, held, scales, said)
        else:
            vips = {
                n: desired_vip(cfg.frontends[n], cfg, states, self._overrides, ramping, held, scales, said)
                for n in frontends
                if n in cfg.frontends
            }
        return {n: self.drains.merge(self._all_down(n, v, states)) for n, v in vips.items()}

    def _all_down(self, name: str, vip: DesiredVip, states: Mapping[str, str]) -> DesiredVip:
        """on-all-down: keep. With every backend down, the last weights stay (fail open)."""
        if any(a.weight > 0 for a in vip.ases):
            self._last_up[name] = vip
            return vip
        last = self._last_up.get(name)
        if last is None or self.config.frontends[name].on_all_down is not AllDown.KEEP:
            return vip
        if last.key != vip.key or not all_down(vip, states):
            return vip
        return replace(vip, ases=tuple(a._replace(flush=False) for a in last.ases))

    def failing_open(self, name: str, vip: DesiredVip) -> bool:
        """Whether the frontend's VIP is its last weights kept while every backend is down."""
        if self.config.frontends[name].on_all_down is not AllDown.KEEP:
            return False
        return any(a.weight > 0 for a in vip.ases) and all_down(vip, self.states)

    def longest_slow_start(self, backend: str) -> float:
        """The longest slow start of the backend's pool memberships (0: none)."""
        return self.slow_starts.longest(self.config, backend)

    def job(
        self, full: bool, frontends: Iterable[str], flush: dict[str, set[IPAddress]], fresh: Mapping[str, DesiredVip]
    ) -> SyncJob:
        """The sync to run now for a (merged) request; ``fresh``: VIPs just computed, reused.

        During the warm-up only released VIPs are written, and a full sync removes nothing."""
        if full:  # ``fresh`` counts only when it holds every frontend (Reloaded.desired)
            desired = dict(fresh) if fresh.keys() >= self.config.frontends.keys() else self.desired()
        else:
            names = sorted(set(frontends))  # a fixed order, whatever the request's (not a pass over all)
            computed = self.desired(n for n in names if n not in fresh)
            desired = {n: fresh[n] if n in fresh else computed[n] for n in names if n in fresh or n in computed}
        wanted = [n for n in self.allowed(desired) if n in desired and n not in self._unsupported]
        # Frontends gone from the config keep their VIP, every AS at weight 0, while they drain.
        draining = tuple(d.vip for d in self.drains.vips.values()) if full else ()
        return SyncJob(
            scope="all" if full else "vip",
            desired=tuple(desired[n] for n in wanted) + draining,
            reread=full,
            full=full and self.warm,
            conf=lb_conf(self.config),
            flush=flush,
        )

    def vip_names(self) -> dict[VipKey, str]:
        """Every configured VIP's key, from the config alone (cheap: no desired ASes)."""
        return {vip_key(fe): name for name, fe in self.config.frontends.items()}

    # --- frontend states ----------------------------------------------------------------
    def update_frontend_states(
        self, names: Iterable[str] | None = None, desired: Mapping[str, DesiredVip] | None = None
    ) -> list[FrontendChange]:
        """Recompute the frontends' states; the changes, in order."""
        if desired is None:
            desired = self.desired(names)
        changes: list[FrontendChange] = []
        for name, vip in desired.items():
            if name in self._unsupported:
                new = FrontendState.UNSUPPORTED
            elif self.failing_open(name, vip):
                new = FrontendState.FAILING_OPEN
            else:
                new = frontend_state(vip, self.states)
            old = self._frontend_states.get(name)
            if old != new:
                self._frontend_states[name] = new
                changes.append((name, old, new))
        return changes

    # --- what the connected VPP can hold ---------------------------------------------------
    def set_vpp(self, fixed_handlers: bool, desired: Mapping[str, DesiredVip] | None = None) -> list[tuple[str, str]]:
        """A VPP is connected; the frontends it newly cannot hold, with why (``desired``: fresh)."""
        self.fixed_handlers = fixed_handlers
        return self._check_support(desired)

    def _check_support(self, desired: Mapping[str, DesiredVip] | None = None) -> list[tuple[str, str]]:
        if self.fixed_handlers is None:
            return []
        before = dict(self._unsupported)
        self._unsupported.clear()
        for name, vip in (self.desired() if desired is None else desired).items():
            why = unsupported(vip, self.fixed_handlers)
            if why is not None:
                self._unsupported[name] = why
        return [(n, why) for n, why in self._unsupported.items() if before.get(n) != why]

    # --- operator weights -----------------------------------------------------------------
    def set_weight(
        self, frontend: str, pool: str, backend: str, weight: int | None, flush: bool
    ) -> dict[str, set[IPAddress]] | None:
        """Keep an operator's weight (None: back to the config's); the flush it asks for, if any.

        Raises KeyError naming what does not exist, ValueError for a weight out of range;
        nothing changes then."""
        check_member(self.config, frontend, pool, backend)
        if weight is None:
            self._overrides.pop((frontend, pool, backend), None)
            return None
        if not 0 <= weight <= 100:
            raise ValueError(f"weight must be 0..100, got {weight}")
        self._overrides[(frontend, pool, backend)] = weight
        return {frontend: {self.config.backends[backend].address}} if flush else None

    # --- reload ---------------------------------------------------------------------------
    def reconfigure(self, new: Config, now: float) -> Reloaded:
        """Take the new config: overrides and states of gone frontends are dropped, what it no
        longer wants starts draining (``self.drains``). Returns what VPP newly cannot hold and
        the VIPs it wants now, to reuse while nothing else changes (10k backends: 20-70 ms)."""
        old_cfg, old = self.config, self.desired()
        self.config = new
        self.reports.reconfigured(new)
        desired = self.desired()  # the new drains change none of it: merge() reads only what is removing
        self.reload_drains = self.drains.on_reload(
            old,
            desired,
            now,
            {n: fe.drain_for(old_cfg.lb) for n, fe in old_cfg.frontends.items()},
            {n: fe.drain_for(new.lb) for n, fe in new.frontends.items()},
        )
        for key in [k for k in self._overrides if k[0] not in new.frontends]:
            del self._overrides[key]
        for name in [n for n in self._frontend_states if n not in new.frontends]:
            del self._frontend_states[name]
        return Reloaded(self._check_support(desired), desired)

    # --- drains -------------------------------------------------------------------------
    def note_observed(
        self, observed: Mapping[VipKey, ObservedVip], now: float, synced: Iterable[DesiredVip] = ()
    ) -> list[DrainingAS]:
        """After a sync (of ``synced``): ASes VPP holds on our VIPs that we do not want start
        draining, and the drained ones VPP no longer has are forgotten; the drains started."""
        started: list[DrainingAS] = []
        known = {v.key: v for v in synced}
        names: dict[VipKey, str] | None = None  # built only for a VIP the sync did not carry (cost: every frontend)
        frontends = self.config.frontends
        for key, vip in observed.items():
            want = known.get(key)
            if want is None:
                names = self.vip_names() if names is None else names
                name = names.get(key)
                if name is None:
                    continue
                want = self.desired([name])[name]
            name = want.frontend
            fe = frontends.get(name)
            if fe is None:  # a removed frontend's VIP, draining as a whole
                continue
            wanted = {a.address for a in want.ases}
            extra = [a.address for a in vip.ases.values() if a.used and a.address not in wanted]
            if name in self.drains.removing:
                self.drains.removed(name, extra)
            if extra and want.drain and self.allowed([name]):
                started += self.drains.found(name, extra, now, fe.drain_for(self.config.lb))
        return started

    # --- warm-up --------------------------------------------------------------------------
    def start_warmup(self, now: float) -> None:
        lb = self.config.lb
        self.started_at = now
        self.warm = lb.startup_min_delay == 0 and lb.startup_max_delay == 0

    def holding(self, now: float) -> bool:
        """Whether VPP writes are held back (the first ``startup-min-delay``)."""
        return not self.warm and now - self.started_at < self.config.lb.startup_min_delay

    def release_ready(self, now: float) -> list[str]:
        """Release the VIPs none of whose backends is unknown any more; the newly released."""
        if self.warm or self.holding(now):
            return []
        config, waiting = self._waiting
        if config is not self.config:
            waiting = {n: fe.backend_names() for n, fe in self.config.frontends.items() if n not in self.released}
            self._waiting = (self.config, waiting)
        newly = known_vips(waiting, self.states)
        self.released.update(newly)
        return newly

    def end_warmup(self) -> bool:
        """The warm-up is over (``startup-max-delay``); False when it already was."""
        if self.warm:
            return False
        self.warm = True
        return True

    def allowed(self, names: Iterable[str]) -> list[str]:
        """The VIPs VPP may be written for now."""
        if self.warm:
            return list(names)
        return [n for n in names if n in self.released]


def known_vips(waiting: dict[str, tuple[str, ...]], states: Mapping[str, str]) -> list[str]:
    """The VIPs none of whose backends is unknown any more, taken out of ``waiting``."""
    known = [n for n, names in waiting.items() if all(states.get(b, UNKNOWN) != UNKNOWN for b in names)]
    for name in known:
        del waiting[name]
    return known


__all__ = ["DataplaneModel", "FrontendChange", "SyncJob"]
