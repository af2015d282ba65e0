"""TimerQueue: ordering, cancellation, re-arming, fairness; the Alarm behind it."""

from __future__ import annotations

import math
from typing import Any

import pytest_twisted
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from maglev.timers import Alarm, TimerQueue

from .helpers import until


def reactor_turn(clock: Clock) -> None:
    """One turn of a reactor: the calls due now, not the ones they schedule (which
    ``Clock.advance`` would run in the same call)."""
    due = [c for c in clock.calls if c.getTime() <= clock.seconds()]
    for c in due:
        clock.calls.remove(c)
        c.called = 1
        c.func(*c.args, **c.kw)


class TimerQueueTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.q = TimerQueue(self.clock)
        self.fired: list[str] = []

    def test_fires_in_deadline_order_with_one_reactor_timer(self) -> None:
        for delay, name in [(3, "c"), (1, "a"), (2, "b"), (1, "a2")]:
            self.q.call_later(delay, self.fired.append, name)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(1)
        self.assertEqual(self.fired, ["a", "a2"])
        self.clock.advance(0.5)
        self.assertEqual(self.fired, ["a", "a2"])
        self.clock.advance(1.5)
        self.assertEqual(self.fired, ["a", "a2", "b", "c"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_cancelled_timers_do_not_fire_and_do_not_keep_the_reactor_timer(self) -> None:
        t = self.q.call_later(1, self.fired.append, "x")
        self.q.call_later(5, self.fired.append, "y")
        self.q.cancel(t)
        self.assertFalse(self.q.active(t))
        self.clock.advance(1)
        self.assertEqual(self.fired, [])
        self.assertEqual(len(self.q), 1)
        self.clock.advance(4)
        self.assertEqual(self.fired, ["y"])

    def test_an_earlier_timer_re_arms(self) -> None:
        self.q.call_later(10, self.fired.append, "late")
        self.q.call_later(1, self.fired.append, "early")
        self.clock.advance(1)
        self.assertEqual(self.fired, ["early"])

    def test_timers_added_by_callbacks_fire_in_a_later_turn(self) -> None:
        turns: list[int] = []

        def first() -> None:
            turns.append(len(self.clock.getDelayedCalls()))
            self.q.call_later(0, self.fired.append, "second")

        self.q.call_later(1, first)
        self.q.call_later(1, self.fired.append, "sibling")
        self.clock.advance(1)
        self.assertEqual(self.fired, ["sibling", "second"])
        self.assertEqual(turns, [0], "no reactor timer is armed while the queue runs")

    def test_callback_scheduling_later_keeps_earlier_timers(self) -> None:
        self.q.call_later(1, lambda: self.q.call_later(10, self.fired.append, "far"))
        self.q.call_later(2, self.fired.append, "near")
        self.clock.advance(1)
        self.clock.advance(1)
        self.assertEqual(self.fired, ["near"])

    def test_one_turn_fires_at_most_turn_timers_and_the_rest_come_first_next(self) -> None:
        q = TimerQueue(self.clock, turn=4)
        for i in range(10):
            q.call_later(1 + i * 0.001, self.fired.append, f"due{i}")
        cancelled = q.call_later(1.5, self.fired.append, "cancelled")
        self.clock.rightNow = 2.0  # all eleven due at once
        reactor_turn(self.clock)
        self.assertEqual(self.fired, ["due0", "due1", "due2", "due3"])
        q.cancel(cancelled)
        q.call_later(0, self.fired.append, "new")  # due now, but after what was due before
        reactor_turn(self.clock)
        self.assertEqual(self.fired[4:], ["due4", "due5", "due6", "due7"])
        reactor_turn(self.clock)
        self.assertEqual(self.fired[8:], ["due8", "due9", "new"])  # the cancelled one fired nothing
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(q.fired, 11)

    def test_stop_drops_everything(self) -> None:
        self.q.call_later(1, self.fired.append, "x")
        self.q.stop()
        self.clock.advance(5)
        self.assertEqual(self.fired, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_resolution_groups_wakeups_and_never_fires_early(self) -> None:
        q = TimerQueue(self.clock, resolution=0.01)
        for delay in (0.001, 0.004, 0.0099, 0.011):
            q.call_later(delay, self.fired.append, delay)
        self.assertEqual([c.getTime() for c in self.clock.getDelayedCalls()], [0.01])
        self.clock.advance(0.0099)
        self.assertEqual(self.fired, [])
        self.clock.advance(0.0001)
        self.assertEqual(self.fired, [0.001, 0.004, 0.0099])
        self.clock.advance(0.01)
        self.assertEqual(self.fired, [0.001, 0.004, 0.0099, 0.011])

    def test_a_failing_callback_is_logged_and_the_others_still_fire(self) -> None:
        def broken() -> None:
            raise ValueError("bug")

        self.q.call_later(1, broken)
        self.q.call_later(1, self.fired.append, "after")
        self.q.call_later(2, self.fired.append, "later")
        self.clock.advance(1)
        self.assertEqual(self.fired, ["after"])
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        self.clock.advance(1)
        self.assertEqual(self.fired, ["after", "later"])

    def test_slots_share_one_heap_entry_and_cancelled_slots_need_no_wakeup(self) -> None:
        q = TimerQueue(self.clock, resolution=0.01)
        ids = [q.call_later(0.001 * i, self.fired.append, i) for i in range(1, 10)]
        q.call_later(0.5, self.fired.append, "far")
        self.assertEqual(len(q._keys), 2)
        for t in ids:
            q.cancel(t)
        self.clock.advance(0.01)
        self.assertEqual(self.fired, [])
        self.assertEqual([c.getTime() for c in self.clock.getDelayedCalls()], [0.5])
        self.clock.advance(0.49)
        self.assertEqual(self.fired, ["far"])


class AlarmTests(SynchronousTestCase):
    def test_an_alarm_only_moves_earlier_and_rings_once(self) -> None:
        clock, rang = Clock(), []
        alarm = Alarm(clock, lambda: rang.append(clock.seconds()))
        cases = [  # (ask to ring at, when it is then set to ring)
            (5.0, 5.0),
            (3.0, 3.0),  # sooner: moved
            (7.0, 3.0),  # later: ignored
        ]
        for when, expected in cases:
            alarm.at(when)
            self.assertEqual(alarm.when, expected)
            self.assertEqual(len(clock.getDelayedCalls()), 1)
        clock.advance(2.9)
        self.assertEqual(rang, [])
        clock.advance(0.1)
        clock.advance(7)
        self.assertEqual(rang, [3.0])
        alarm.at(12.0)  # after ringing it can be set again, for any time
        alarm.cancel()
        clock.advance(10)
        self.assertEqual((rang, clock.getDelayedCalls()), ([3.0], []))


# --- on the asyncio reactor: the loop's own timers, not DelayedCalls -----------------------
def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


@pytest_twisted.ensureDeferred
async def test_on_the_asyncio_reactor_an_alarm_is_a_loop_timer_and_a_cancelled_one_stays_silent() -> None:
    r = _reactor()
    before = len(r.getDelayedCalls())
    rang: list[str] = []
    later: Deferred[None] = Deferred()
    cancelled = Alarm(r, lambda: rang.append("cancelled"))
    kept = Alarm(r, lambda: rang.append("kept"))
    last = Alarm(r, lambda: later.callback(None))
    now = r.seconds()
    cancelled.at(now + 0.01)
    kept.at(now + 0.02)
    last.at(now + 0.05)
    # None of them is a DelayedCall of the reactor's: each went to the loop directly.
    assert len(r.getDelayedCalls()) == before
    cancelled.cancel()
    await later.addTimeout(5, r)
    # The last one rang after both others were due: the cancelled one would have rung by now.
    assert rang == ["kept"]
    assert r.seconds() >= now + 0.05
    assert (cancelled.when, kept.when, last.when) == (math.inf, math.inf, math.inf)


@pytest_twisted.ensureDeferred
async def test_what_an_alarms_callback_raises_is_logged_and_the_alarm_can_ring_again() -> None:
    from twisted.logger import ILogObserver, globalLogPublisher

    r = _reactor()
    seen: list[dict[str, Any]] = []
    observer: ILogObserver = seen.append  # type: ignore[assignment]
    globalLogPublisher.addObserver(observer)
    rang: Deferred[None] = Deferred()
    calls = [0]

    def ring() -> None:
        calls[0] += 1
        if calls[0] == 1:
            raise ValueError("broken callback")
        rang.callback(None)

    try:
        alarm = Alarm(r, ring)
        alarm.at(r.seconds())
        await until(lambda: calls[0] == 1)
        alarm.at(r.seconds())  # it rang (and failed): it can be set again
        await rang.addTimeout(5, r)
    finally:
        globalLogPublisher.removeObserver(observer)
    failed = [e for e in seen if e.get("event") == "timer-failed"]
    assert len(failed) == 1
    assert "ring" in failed[0]["ring"] and failed[0]["log_failure"].check(ValueError)
    assert calls[0] == 2
