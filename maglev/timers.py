"""TimerQueue: many cheap timers behind one reactor timer.

At 10,000 probes a second, every probe needs a "next probe" timer and a
timeout. Twisted's callLater on the asyncio reactor costs a DelayedCall, an
asyncio TimerHandle and a reschedule each time; here a timer is one heap push,
and one reactor timer stays armed for the earliest deadline.

Timers are plain integers and the heap holds ``(when, id)`` tuples, which the
cyclic GC stops tracking after one look: a timer creates no long-lived object
the collector would have to walk on every pass (see maglev/gcpolicy.py).
Wake-ups can be rounded up to a grid (``resolution``) so timers falling in one
slot share one wake-up; a timer then fires late by at most the resolution,
never early.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime

TimerId = int


class TimerQueue:
    def __init__(self, clock: IReactorTime, resolution: float = 0.0) -> None:
        self.clock = clock
        self.resolution = resolution
        self._heap: list[tuple[float, int]] = []
        self._calls: dict[int, Callable[..., object]] = {}
        self._args: dict[int, tuple[Any, ...]] = {}
        self._ids = itertools.count(1)
        self._armed: IDelayedCall | None = None
        self._armed_for = math.inf
        self._running = False
        self.fired = 0

    def call_later(self, delay: float, fn: Callable[..., object], *args: Any) -> TimerId:
        when = self.clock.seconds() + max(delay, 0.0)
        ident = next(self._ids)
        self._calls[ident] = fn
        if args:
            self._args[ident] = args
        heapq.heappush(self._heap, (when, ident))
        if when < self._armed_for and not self._running:
            self._arm(when)
        return ident

    def cancel(self, ident: TimerId) -> None:
        """Forget the timer; its entry leaves the heap lazily, holding nothing."""
        if self._calls.pop(ident, None) is not None:
            self._args.pop(ident, None)

    def active(self, ident: TimerId) -> bool:
        return ident in self._calls

    def __len__(self) -> int:
        return len(self._calls)

    def _arm(self, when: float) -> None:
        if self.resolution > 0:
            when = math.ceil(when / self.resolution) * self.resolution
            if when >= self._armed_for:
                return
        if self._armed is not None and self._armed.active():
            self._armed.cancel()
        self._armed_for = when
        self._armed = self.clock.callLater(max(when - self.clock.seconds(), 0.0), self._run)

    def _run(self) -> None:
        self._armed = None
        self._armed_for = math.inf
        now = self.clock.seconds() + 1e-9  # grid rounding must not leave a due timer behind
        heap, calls, args = self._heap, self._calls, self._args
        # Timers added while running wait for the next turn, even when already due:
        # a callback that keeps scheduling "now" cannot starve the reactor.
        cutoff = next(self._ids)
        self._running = True
        try:
            while heap and heap[0][0] <= now and heap[0][1] < cutoff:
                ident = heapq.heappop(heap)[1]
                fn = calls.pop(ident, None)
                if fn is not None:
                    self.fired += 1
                    fn(*args.pop(ident, ()))
        finally:
            self._running = False
            while heap and heap[0][1] not in calls:
                heapq.heappop(heap)
            if heap:
                self._arm(heap[0][0])

    def stop(self) -> None:
        if self._armed is not None and self._armed.active():
            self._armed.cancel()
        self._armed = None
        self._armed_for = math.inf
        self._heap.clear()
        self._calls.clear()
        self._args.clear()
