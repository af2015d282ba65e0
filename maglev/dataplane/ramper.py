"""Ramper, on the reactor thread: the timing side of slow start (the rules are ramp.py's).
It starts a ramp when a backend goes up, and once a second, while any backend ramps,
moves every ramp to its next step and asks for one sync of the VIPs that use them."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall

from ..events import BackendTransition
from ..log import Logger
from .follower import TransitionFollower
from .model import DataplaneModel

STEP = 1.0  # seconds between weight updates of a ramping backend


class Ramper(TransitionFollower):
    log = Logger()

    def __init__(self, model: DataplaneModel, clock: IReactorTime, sync: Callable[[Iterable[str]], object]) -> None:
        super().__init__(model, clock, sync)
        self._loop: LoopingCall | None = None

    def _stopped(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def _on_transition(self, t: BackendTransition) -> None:
        m = self.model
        ramp = m.longest_slow_start(t.backend)
        if ramp <= 0:
            m.ramps.transition(t.backend, t.old, t.new, self.clock.seconds(), warm=False)
            return
        if m.ramps.transition(t.backend, t.old, t.new, self.clock.seconds(), warm=m.warm):
            self.log.info("slow start of {backend}: {duration:g} s", event="slow-start", backend=t.backend,
                          duration=ramp)  # fmt: skip
            if self._loop is None or not self._loop.running:
                self._loop = LoopingCall(self._tick)
                self._loop.clock = self.clock
                self._loop.start(STEP, now=False)

    def _tick(self) -> None:
        m = self.model
        changed = m.ramps.tick(self.clock.seconds(), m.longest_slow_start)
        if changed:
            self.sync(self.frontends_of(changed))
        if not m.ramps.started and self._loop is not None and self._loop.running:
            self._loop.stop()
