"""Drain before remove. Pure: time comes in as arguments.

An AS that maglevd stops wanting (its backend left the pool or the config, its address
changed, or it was found on a managed VIP without being configured) first goes to
weight 0 *without* flush: new flows stop, established ones keep their AS through VPP's
flow table. After the frontend's ``drain-timeout`` (default: VPP's flow-timeout) it is
removed. A frontend removed from the config drains the same way, its whole VIP at
weight 0, then the VIP goes. A reload that wants the AS (or the VIP) again ends its drain.

Without weights (VPP <= 26.06) weight 0 means "not programmed": a drain is a removal
without flush, done at once (VPP itself keeps the flows of a removed AS until they time out).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from .desired import DesiredAS, DesiredVip, IPAddress, VipKey


@dataclass(frozen=True)
class DrainingAS:
    frontend: str
    address: IPAddress
    backend: str  # "" for an AS found in VPP that no backend of ours has
    pool: str
    deadline: float
    why: str

    def left(self, now: float) -> float:
        return max(0.0, self.deadline - now)


@dataclass(frozen=True)
class DrainingVip:
    frontend: str  # the name it had in the config
    vip: DesiredVip  # as it was, every AS at weight 0 without flush (its frontend: "NAME (draining)")
    deadline: float

    def left(self, now: float) -> float:
        return max(0.0, self.deadline - now)


def _zeroed(vip: DesiredVip) -> DesiredVip:
    return replace(vip, ases=tuple(a._replace(weight=0, flush=False) for a in vip.ases))


class Drains:
    def __init__(self) -> None:
        self.ases: dict[str, dict[IPAddress, DrainingAS]] = {}  # frontend -> address -> drain
        self.vips: dict[VipKey, DrainingVip] = {}  # VIPs of frontends that are gone
        self.removing: dict[str, set[IPAddress]] = {}  # drained, to delete from VPP now

    # --- starting and ending drains -------------------------------------------------------
    def on_reload(
        self,
        old: Mapping[str, DesiredVip],
        new: Mapping[str, DesiredVip],
        now: float,
        old_timeout: Mapping[str, float],
        new_timeout: Mapping[str, float],
    ) -> tuple[list[DrainingAS | DrainingVip], list[str]]:
        """Start the drains a reload calls for and end those it makes unneeded: (started, ended),
        ``ended`` naming what is wanted again. A timeout of 0 drains nothing (removal at once)."""
        started: list[DrainingAS | DrainingVip] = []
        ended: list[str] = []
        new_keys = {v.key: name for name, v in new.items()}
        for key in [k for k in self.vips if k in new_keys]:
            del self.vips[key]
            ended.append(f"{new_keys[key]} ({key})")
        for name, ov in old.items():
            nv = new.get(name)
            if nv is None or nv.key != ov.key:
                timeout = old_timeout.get(name, 0.0)
                if timeout > 0 and ov.key not in new_keys and ov.key not in self.vips:
                    d = DrainingVip(name, _zeroed(replace(ov, frontend=f"{name} (draining)")), now + timeout)
                    self.vips[ov.key] = d
                    started.append(d)
                continue
            timeout = new_timeout.get(name, 0.0)
            wanted = {a.address for a in nv.ases}
            draining = self.ases.setdefault(name, {})
            for a in ov.ases:
                if a.address not in wanted and a.address not in draining and timeout > 0:
                    why = _why(a, nv)
                    d2 = DrainingAS(name, a.address, a.backend, a.pool, now + timeout, why)
                    draining[a.address] = d2
                    started.append(d2)
        for name in list(self.ases):
            nv = new.get(name)
            for address in list(self.ases[name]):
                if nv is None or any(a.address == address for a in nv.ases):
                    d3 = self.ases[name].pop(address)
                    if nv is not None:
                        ended.append(f"{name} {d3.address}")
            if not self.ases[name]:
                del self.ases[name]
        return started, ended

    def found(self, frontend: str, addresses: Iterable[IPAddress], now: float, timeout: float) -> list[DrainingAS]:
        """ASes VPP holds on a VIP we manage that we do not want: drained, never flushed."""
        draining = self.ases.setdefault(frontend, {})
        removing = self.removing.get(frontend, set())
        started = []
        for address in addresses:
            if address not in draining and address not in removing:
                d = DrainingAS(frontend, address, "", "", now + timeout, "in VPP but not in the configuration")
                draining[address] = d
                started.append(d)
        if not draining:
            del self.ases[frontend]
        return started

    def expire(self, now: float) -> list[DrainingAS | DrainingVip]:
        """Drains whose time is up: their ASes (VIPs) are now to be removed."""
        done: list[DrainingAS | DrainingVip] = []
        for name in list(self.ases):
            for address, d in list(self.ases[name].items()):
                if d.deadline <= now:
                    del self.ases[name][address]
                    self.removing.setdefault(name, set()).add(address)
                    done.append(d)
            if not self.ases[name]:
                del self.ases[name]
        for key, dv in list(self.vips.items()):
            if dv.deadline <= now:  # no longer desired: the next full sync removes the VIP
                del self.vips[key]
                done.append(dv)
        return done

    def removed(self, frontend: str, still_used: Iterable[IPAddress]) -> None:
        """After a sync: forget the removals VPP has carried out."""
        left = self.removing.get(frontend, set()) & set(still_used)
        if left:
            self.removing[frontend] = left
        else:
            self.removing.pop(frontend, None)

    def next_deadline(self) -> float | None:
        deadlines = [d.deadline for m in self.ases.values() for d in m.values()]
        deadlines += [d.deadline for d in self.vips.values()]
        return min(deadlines) if deadlines else None

    # --- what the plan sees -----------------------------------------------------------------
    def merge(self, vip: DesiredVip) -> DesiredVip:
        """The VIP with its drained ASes to remove. Draining ones need nothing: the plan puts any
        AS a VIP does not want at weight 0 without flush, and only ``remove`` deletes."""
        removing = self.removing.get(vip.frontend)
        return replace(vip, remove=frozenset(removing)) if removing else vip

    def draining_of(self, frontend: str) -> list[DrainingAS]:
        return sorted(self.ases.get(frontend, {}).values(), key=lambda d: (d.address.version, int(d.address)))


def _why(a: DesiredAS, new: DesiredVip) -> str:
    if a.backend and any(b.backend == a.backend for b in new.ases):
        return f"backend {a.backend} moved to another address"
    if a.backend:
        return f"backend {a.backend} left pool {a.pool}"
    return "no longer wanted"
