"""TimerQueue: many cheap timers behind one reactor timer.

At 10,000 probes a second, every probe needs a "next probe" timer and a
timeout. Twisted's callLater on the asyncio reactor costs a DelayedCall, an
asyncio TimerHandle and a reschedule each time; here a timer is an integer
appended to the list of its slot, and one reactor timer stays armed for the
earliest slot.

Wake-ups can be rounded up to a grid (``resolution``): a slot is one grid
step, so timers falling in one slot share one wake-up and cost no heap
operation of their own (only a new slot does); a timer then fires late by at
most the resolution, never early. Without a resolution a slot is one exact
deadline. Slots fire in deadline order, the timers of one slot in the order
they were added.

Timers are plain integers and slots hold plain lists of them, which the cyclic
GC does not have to walk the way it walks per-timer objects (see
maglev/gcpolicy.py).

One turn of the reactor fires at most ``TURN`` timers; the rest of what is due
fires in the next turns, before anything due later. At start, 10,000 backends'
first probes each bring a transition, a log line and a sync request: fired in
one go, they held the reactor for seconds, and the API could not answer.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections.abc import Callable
from typing import Any, cast

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from .log import Logger
from .reactor import event_loop_of

TimerId = int
TURN = 64  # timers one reactor turn fires at most


class Alarm:
    """One reactor timer that is only ever brought forward: the wake-up behind a queue of
    timers (TimerQueue here, the connect-check engine's heap in health/probes/connect.py).

    On the asyncio reactor it is an asyncio timer on the reactor's loop, not a DelayedCall
    (``event_loop_of``: the cost of a wake-up); on any other clock, a test's ``Clock``
    included, it is the clock's callLater. Either way it rings at the clock's ``when``, and
    what ``ring`` raises is logged, not lost.
    """

    log = Logger()

    def __init__(self, clock: IReactorTime, ring: Callable[[], object]) -> None:
        self.clock = clock
        self.ring = ring
        self.when = math.inf
        self._loop = event_loop_of(clock)
        self._call: IDelayedCall | asyncio.TimerHandle | None = None

    def at(self, when: float) -> None:
        """Ring at ``when`` unless already set to ring sooner."""
        if when >= self.when:
            return
        self.cancel()
        self.when = when
        delay = max(when - self.clock.seconds(), 0.0)
        if self._loop is not None:
            self._call = self._loop.call_later(delay, self._rang)
        else:
            self._call = self.clock.callLater(delay, self._rang)

    def _rang(self) -> None:
        self._call = None
        self.when = math.inf
        try:
            self.ring()
        except Exception:
            self.log.failure(
                "timer callback {ring} failed", event="timer-failed", ring=getattr(self.ring, "__qualname__", "?")
            )

    def cancel(self) -> None:
        call, self._call = self._call, None
        self.when = math.inf
        if call is None:
            return
        if self._loop is not None:  # the loop's handle (any loop's: uvloop's is no asyncio.TimerHandle)
            call.cancel()
        elif cast("IDelayedCall", call).active():
            call.cancel()


class TimerQueue:
    log = Logger()

    def __init__(self, clock: IReactorTime, resolution: float = 0.0, turn: int = TURN) -> None:
        self.clock = clock
        self.resolution = resolution
        self.turn = turn
        self._carried: list[int] = []  # due, left for the next turn
        self._slots: dict[float, list[int]] = {}  # slot -> its timers, cancelled ones included
        self._keys: list[float] = []  # heap of the slots
        self._calls: dict[int, Callable[..., object]] = {}
        self._args: dict[int, tuple[Any, ...]] = {}
        self._ids = itertools.count(1)
        self._alarm = Alarm(clock, self._run)
        self._running = False
        self.fired = 0

    def call_later(self, delay: float, fn: Callable[..., object], *args: Any) -> TimerId:
        when = self.clock.seconds() + (delay if delay > 0.0 else 0.0)
        key = math.ceil(when / self.resolution) if self.resolution else when
        ident = next(self._ids)
        self._calls[ident] = fn
        if args:
            self._args[ident] = args
        slot = self._slots.get(key)
        if slot is None:
            self._slots[key] = [ident]
            heapq.heappush(self._keys, key)
            if not self._running:
                self._alarm.at(self._when(key))
        else:
            slot.append(ident)
        return ident

    def cancel(self, ident: TimerId) -> None:
        """Forget the timer; its id leaves its slot lazily, holding nothing."""
        if self._calls.pop(ident, None) is not None:
            self._args.pop(ident, None)

    def active(self, ident: TimerId) -> bool:
        return ident in self._calls

    def __len__(self) -> int:
        return len(self._calls)

    def _when(self, key: float) -> float:
        return key * self.resolution if self.resolution else key

    def _run(self) -> None:
        now = self.clock.seconds() + 1e-9  # grid rounding must not leave a due timer behind
        keys, slots, calls, args = self._keys, self._slots, self._calls, self._args
        # Take the due slots out first: timers added while running go to new slots and
        # wait for the next turn, even when already due, so a callback that keeps
        # scheduling "now" cannot starve the reactor.
        due, self._carried = self._carried, []
        while keys and self._when(keys[0]) <= now:
            due.extend(slots.pop(heapq.heappop(keys)))
        self._running = True
        fired = 0
        try:
            for i, ident in enumerate(due):
                if fired == self.turn:
                    self._carried = due[i:]
                    break
                fn = calls.pop(ident, None)
                if fn is not None:
                    fired += 1
                    self.fired += 1
                    try:
                        fn(*args.pop(ident, ()))
                    except Exception:
                        # As the reactor does with a failing callLater: log it, and the
                        # other timers of this turn still fire.
                        self.log.failure("timer callback {fn!r} failed", fn=fn)
        finally:
            self._running = False
            # Slots whose timers were all cancelled need no wake-up.
            while keys and not any(ident in calls for ident in slots[keys[0]]):
                del slots[heapq.heappop(keys)]
            if self._carried:
                self._alarm.at(self.clock.seconds())  # the next turn, after the reactor's other work
            elif keys:
                self._alarm.at(self._when(keys[0]))

    def stop(self) -> None:
        self._alarm.cancel()
        self._carried = []
        self._keys.clear()
        self._slots.clear()
        self._calls.clear()
        self._args.clear()
