"""TransitionFollower, on the reactor thread: what the change timers (ramper.py,
dampener.py, guard.py) share: the model, a clock, a way to ask for syncs, and a
subscription to backend transitions that ``stop`` ends."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from twisted.internet.interfaces import IReactorTime

from ..bus import EventBus, Subscription
from ..events import BackendTransition
from .model import DataplaneModel


class TransitionFollower:
    def __init__(self, model: DataplaneModel, clock: IReactorTime, sync: Callable[[Iterable[str]], object]) -> None:
        self.model = model
        self.clock = clock
        self.sync = sync
        self.bus: EventBus | None = None
        self._subscription: Subscription | None = None

    def start(self, bus: EventBus) -> None:
        self.bus = bus
        self._subscription = bus.subscribe(BackendTransition, self._on_transition)

    def stop(self) -> None:
        if self._subscription is not None:
            self._subscription.cancel()
            self._subscription = None
        self._stopped()

    def _on_transition(self, t: BackendTransition) -> None:
        raise NotImplementedError

    def _stopped(self) -> None:
        """Cancel what is scheduled."""

    def frontends_of(self, backends: Iterable[str]) -> list[str]:
        return sorted({fe for b in backends for fe in self.model.config.frontends_using(b)})
