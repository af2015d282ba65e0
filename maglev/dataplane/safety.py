"""SafeChanges, on the reactor thread: the timers that make changes gentle, together:
drains (drainer.py), slow starts (ramper.py), flap dampening (dampener.py) and the
checker-isolation guard (guard.py). LbSync
starts, stops and tells them; each asks LbSync for the syncs it needs."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from twisted.internet.interfaces import IReactorTime

from ..bus import EventBus
from .dampener import Dampener
from .drain import DrainingAS, DrainingVip
from .drainer import Drainer
from .guard import IsolationGuard
from .model import DataplaneModel
from .ramper import Ramper


class SafeChanges:
    def __init__(
        self,
        model: DataplaneModel,
        clock: IReactorTime,
        full_sync: Callable[[], object],
        sync: Callable[[Iterable[str]], object],
        wallclock: Callable[[], float],
    ) -> None:
        self.drainer = Drainer(model.drains, clock, full_sync)
        self.ramper = Ramper(model, clock, sync)
        self.dampener = Dampener(model, clock, sync)
        self.isolation = IsolationGuard(model, clock, sync, wallclock)

    def start(self, bus: EventBus) -> None:
        self.ramper.start(bus)
        self.dampener.start(bus)
        self.isolation.start(bus)

    def stop(self) -> None:
        self.drainer.stop()
        self.ramper.stop()
        self.dampener.stop()
        self.isolation.stop()

    def reloaded(self, started: list[DrainingAS | DrainingVip], ended: list[str]) -> bool:
        """A reload's drains, and its dampening settings; whether that changed what the
        dataplane wants (a suppression lifted)."""
        self.drainer.reloaded(started, ended)
        return self.dampener.reconfigured()

    def found(self, drains: list[DrainingAS]) -> None:
        """After a sync: ASes found in VPP that no frontend wants, now draining."""
        self.drainer.started(drains)
