"""The lb plugin's garbage collection in the emulator, as VPP's lb-gc-process does it.

An AS that is no longer used is freed once it has been unused for the grace time and
holds no flows; a deleted VIP is freed (master only) once it has no AS left. Config
calls collect their own VIP at most once per GC interval; the GC process collects every
VIP each interval on master, never on 26.06; lb_conf collects everything.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

from .lb_model import Vip

if TYPE_CHECKING:
    from .lb import LbPlugin


class Collector:
    def __init__(self, lb: LbPlugin) -> None:
        self.lb = lb

    def vip(self, vip: Vip, now: float) -> None:
        lb = self.lb
        vip.last_gc = now
        for i in list(vip.ases):
            a = lb.ases[i]
            # unused for the grace time and without flows
            if a is not None and not a.used and now - a.last_used >= lb.as_grace and a.flows == 0:
                vip.ases.remove(i)
                lb.ases[i] = None
                heapq.heappush(lb.free_ases, i)
        if vip.deleted and not vip.ases and lb.weights:
            lb.vips[vip.index] = None
            heapq.heappush(lb.free_vips, vip.index)

    def after_config(self, vip: Vip) -> None:
        """Config calls collect on their VIP, at most once per GC interval."""
        now = self.lb.now()
        if now - vip.last_gc >= self.lb.gc_interval:
            self.vip(vip, now)

    def run(self, all_vips: bool = False) -> None:
        """The lb-gc-process (master only, every GC interval); ``all_vips`` for lb_conf."""
        lb = self.lb
        now = lb.now()
        lb.flows.expire(now)
        for v in list(lb.vips[1:]):
            if v is None:
                continue
            if all_vips or (lb.weights and now - v.last_gc >= lb.gc_interval):
                self.vip(v, now)


__all__ = ["Collector"]
