"""The event bus: typed delivery, ordering under re-entrancy, isolation of failures."""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet.defer import fail
from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase

from maglev.bus import EventBus, Subscription
from maglev.events import ConfigLoaded, ConfigRejected, Event
from maglev.log import gate


@dataclass(frozen=True)
class Ping(Event):
    n: int


def loaded(gen: int) -> ConfigLoaded:
    return ConfigLoaded(0.0, gen, "/x", 1, 2, 3)


class EventBusTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.bus = EventBus()
        self.logged: list[dict[str, object]] = []
        self.addCleanup(gate.add_tap(self.logged.append))

    def test_delivery_by_class(self) -> None:
        got: list[Event] = []
        self.bus.subscribe(ConfigLoaded, got.append)
        self.bus.subscribe((ConfigLoaded, ConfigRejected), got.append)
        self.bus.publish(loaded(1))
        self.bus.publish(ConfigRejected(0.0, 1, "/x", "semantic", ("e",)))
        self.bus.publish(Ping(0.0, 1))
        self.assertEqual([type(e).__name__ for e in got], ["ConfigLoaded", "ConfigLoaded", "ConfigRejected"])

    def test_base_class_subscription_sees_everything(self) -> None:
        got: list[Event] = []
        self.bus.subscribe(Event, got.append)
        self.bus.publish(Ping(0.0, 1))
        self.bus.publish(loaded(2))
        self.assertEqual(len(got), 2)

    def test_events_published_by_a_subscriber_come_after_the_current_one(self) -> None:
        order: list[tuple[str, int]] = []

        def first(e: Ping) -> None:
            order.append(("first", e.n))
            if e.n == 1:
                self.bus.publish(Ping(0.0, 2))

        self.bus.subscribe(Ping, first)
        self.bus.subscribe(Ping, lambda e: order.append(("second", e.n)))
        self.bus.publish(Ping(0.0, 1))
        self.assertEqual(order, [("first", 1), ("second", 1), ("first", 2), ("second", 2)])

    def test_cancel_during_delivery(self) -> None:
        got: list[int] = []
        subs: list[Subscription] = []

        def canceller(e: Ping) -> None:
            subs[1].cancel()

        subs.append(self.bus.subscribe(Ping, canceller))
        subs.append(self.bus.subscribe(Ping, lambda e: got.append(e.n)))
        self.bus.publish(Ping(0.0, 1))
        self.bus.publish(Ping(0.0, 2))
        self.assertEqual(got, [])
        self.assertEqual(self.bus.subscriber_count, 1)

    def test_failing_subscriber_is_logged_and_isolated(self) -> None:
        got: list[int] = []

        def broken(e: Ping) -> None:
            raise RuntimeError("boom")

        self.bus.subscribe(Ping, broken)
        self.bus.subscribe(Ping, lambda e: fail(ValueError("async boom")))
        self.bus.subscribe(Ping, lambda e: got.append(e.n))
        self.bus.publish(Ping(0.0, 7))
        self.assertEqual(got, [7])
        failures = [e for e in self.logged if e.get("log_level") == LogLevel.critical and "log_failure" in e]
        self.assertEqual(len(failures), 2)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError, ValueError)), 2)
