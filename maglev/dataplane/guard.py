"""IsolationGuard, on the reactor thread: the timing and telling side of the
checker-isolation guard (the rules are isolation.py's). It alerts when it trips (a
``checker-isolation`` log line and event), re-syncs what it holds, and lets go when the
share of down backends falls back, or when an operator releases it."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from twisted.internet.interfaces import IReactorTime

from ..events import BackendTransition, CheckerIsolation
from ..log import Logger
from .follower import TransitionFollower
from .model import DataplaneModel


class IsolationGuard(TransitionFollower):
    log = Logger()

    def __init__(
        self,
        model: DataplaneModel,
        clock: IReactorTime,
        sync: Callable[[Iterable[str]], object],
        wallclock: Callable[[], float],
    ) -> None:
        super().__init__(model, clock, sync)
        self.wallclock = wallclock

    def _on_transition(self, t: BackendTransition) -> None:
        m = self.model
        hc = m.config.healthchecker
        iso = m.isolation
        if iso.transition(t.backend, t.old, t.new, self.clock.seconds(), len(m.config.backends),
                          hc.isolation_threshold, hc.isolation_window):  # fmt: skip
            self.log.error(
                "checker isolation: {share:.0%} of all backends went down within {window:g} s; holding their "
                "dataplane state until the share falls to {threshold:.0%} or an operator releases it",
                event="checker-isolation", share=iso.fraction, window=hc.isolation_window,
                threshold=hc.isolation_threshold, held=sorted(iso.held),
            )  # fmt: skip
            self._tell(True)
            self.sync(self.frontends_of(iso.held))
        elif iso.recovered(m.live_states, hc.isolation_threshold):
            self.release("the share of backends down fell back")

    def release(self, why: str) -> list[str]:
        """Let go (an operator, or the checker recovered); the backends that were held."""
        if not self.model.isolation.active:
            return []
        held = self.model.isolation.release()
        self.log.warn("checker isolation released ({why}): following the health checker again",
                      event="checker-isolation-released", why=why, held=held)  # fmt: skip
        self._tell(False)
        self.sync(self.frontends_of(held))
        return held

    def _tell(self, active: bool) -> None:
        iso = self.model.isolation
        if self.bus is not None:
            self.bus.publish(CheckerIsolation(self.wallclock(), active, iso.fraction, tuple(sorted(iso.held))))
