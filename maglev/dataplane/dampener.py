"""Dampener, on the reactor thread: the timing side of flap dampening (the rules are
dampening.py's). It adds a penalty at each up -> down transition of a dampened backend,
suppresses it (a sync of its VIPs), and lifts the suppression when the penalty has
decayed to ``reuse``."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from ..config import Config, Dampening
from ..events import BackendTransition
from ..log import Logger
from .follower import TransitionFollower
from .model import DataplaneModel


class Dampener(TransitionFollower):
    log = Logger()

    def __init__(self, model: DataplaneModel, clock: IReactorTime, sync: Callable[[Iterable[str]], object]) -> None:
        super().__init__(model, clock, sync)
        self._timer: IDelayedCall | None = None
        self._settings: tuple[Config | None, dict[str, Dampening]] = (None, {})

    def settings(self) -> dict[str, Dampening]:
        """The dampened backends' settings, for the running configuration. Kept until it
        changes: every transition looks, and 10,000 first probes at start are 10,000 of them."""
        config, settings = self._settings
        if config is not self.model.config:
            config = self.model.config
            settings = {n: b.dampening for n, b in config.backends.items() if b.dampening is not None}
            self._settings = (config, settings)
        return settings

    def _stopped(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _on_transition(self, t: BackendTransition) -> None:
        backend = self.model.config.backends.get(t.backend)
        d = backend.dampening if backend is not None else None
        now = self.clock.seconds()
        if self.model.flaps.transition(t.backend, t.old, t.new, now, d):
            assert d is not None
            self.log.warn(
                "backend {backend} flaps: suppressed (penalty {penalty:.0f}, reuse in {reuse:.0f} s)",
                event="flap-suppressed", backend=t.backend, penalty=self.model.flaps.penalty(t.backend, now, d),
                reuse=(self.model.flaps.reuse_at(t.backend, d) or now) - now,
            )  # fmt: skip
            self.sync(self.model.config.frontends_using(t.backend))
        self._schedule()

    def reconfigured(self) -> bool:
        """The config changed: backends no longer dampened are let go at once; whether any
        suppression ended (what the dataplane wants changed)."""
        freed = self.model.flaps.undampened(self.settings())
        for backend in freed:
            self.log.info("backend {backend} no longer dampened: let go", event="flap-reused", backend=backend)
        if freed:
            self.sync(self.frontends_of(freed))
        return self._reuse() or bool(freed)

    def _schedule(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        when = self.model.flaps.next_reuse(self.settings())
        if when is not None:
            self._timer = self.clock.callLater(max(0.0, when - self.clock.seconds()), self._reuse)

    def _reuse(self) -> bool:
        self._timer = None
        lifted = self.model.flaps.reuse(self.clock.seconds(), self.settings())
        for backend in lifted:
            self.log.info("backend {backend} reused: its flap penalty decayed", event="flap-reused", backend=backend)
        if lifted:
            self.sync(self.frontends_of(lifted))
        self._schedule()
        return bool(lifted)
