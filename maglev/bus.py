"""In-process publish/subscribe of typed events, on the reactor thread.

Subscribers are called synchronously in subscription order. An event published
from inside a subscriber is queued and delivered after the current one, so
every subscriber sees events in the same order. A subscriber's exception is
logged and never reaches the publisher or the other subscribers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from .events import Event
from .log import Logger

E = TypeVar("E", bound=Event)


class Subscription:
    def __init__(self, bus: EventBus, kinds: tuple[type[Event], ...], callback: Callable[[Any], object]) -> None:
        self._bus = bus
        self.kinds = kinds
        self.callback = callback
        self.active = True

    def cancel(self) -> None:
        if self.active:
            self.active = False
            self._bus._remove(self)


class EventBus:
    log = Logger()

    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []
        self._queue: deque[Event] = deque()
        self._dispatching = False
        self.published = 0

    def subscribe(self, kinds: type[E] | tuple[type[E], ...], callback: Callable[[E], object]) -> Subscription:
        if not isinstance(kinds, tuple):
            kinds = (kinds,)
        sub = Subscription(self, kinds, callback)
        self._subscriptions.append(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    def publish(self, event: Event) -> None:
        self._queue.append(event)
        if self._dispatching:
            return
        self._dispatching = True
        try:
            while self._queue:
                self._deliver(self._queue.popleft())
        finally:
            self._dispatching = False

    def _deliver(self, event: Event) -> None:
        self.published += 1
        for sub in list(self._subscriptions):
            if not sub.active or not isinstance(event, sub.kinds):
                continue
            try:
                result = sub.callback(event)
            except Exception:
                self._failed(Failure(), sub, event)
                continue
            if isinstance(result, Deferred):
                result.addErrback(self._failed, sub, event)

    def _failed(self, failure: Failure, sub: Subscription, event: Event) -> None:
        self.log.failure(
            "event subscriber {callback!r} failed on {event_type}",
            failure,
            callback=sub.callback,
            event_type=type(event).__name__,
        )
