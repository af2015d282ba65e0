"""Structured logging: the level gate, taps below the level, the JSON record."""

from __future__ import annotations

import io
import json

from twisted.logger import LogLevel, LogPublisher
from twisted.trial.unittest import SynchronousTestCase

from maglev.log import JsonLineObserver, LogGate, Logger, event_as_record, observer_for, parse_level


class GateTests(SynchronousTestCase):
    def test_level_gates_output_but_taps_see_everything(self) -> None:
        published: list[dict[str, object]] = []
        gate = LogGate(LogPublisher(published.append))  # type: ignore[arg-type]
        gate.level = LogLevel.info
        tapped: list[dict[str, object]] = []
        remove = gate.add_tap(tapped.append)
        log = Logger(namespace="t", observer=gate)
        log.debug("probe {n}", n=1)
        log.info("transition {n}", n=2)
        self.assertEqual([e["n"] for e in tapped], [1, 2])
        self.assertEqual([e["n"] for e in published], [2])
        remove()
        gate(tapped[0])
        self.assertEqual(len(tapped), 2, "a removed tap sees nothing more")

    def test_parse_level(self) -> None:
        self.assertIs(parse_level("WARN"), LogLevel.warn)
        self.assertIs(parse_level("warning"), LogLevel.warn)
        with self.assertRaises(ValueError):
            parse_level("verbose")


class JsonTests(SynchronousTestCase):
    def test_record_shape(self) -> None:
        event = {
            "log_format": "backend {backend} {old} -> {new}",
            "log_level": LogLevel.info,
            "log_namespace": "maglev.health",
            "log_time": 0.5,
            "event": "backend-transition",
            "backend": "web0",
            "old": "unknown",
            "new": "up",
            "extra": object(),
        }
        rec = event_as_record(event)
        self.assertEqual(rec["time"], "1970-01-01T00:00:00.500Z")
        self.assertEqual(rec["level"], "info")
        self.assertEqual(rec["event"], "backend-transition")
        self.assertEqual(rec["msg"], "backend web0 unknown -> up")
        self.assertEqual(rec["backend"], "web0")
        self.assertIsInstance(rec["extra"], str)
        self.assertNotIn("log_format", rec)

    def test_observer_writes_one_line_per_event_at_level(self) -> None:
        out = io.StringIO()
        obs = observer_for(out, LogLevel.warn)
        base = {"log_namespace": "x", "log_time": 0.0, "log_format": "{m}"}
        obs({**base, "log_level": LogLevel.info, "m": "quiet"})
        obs({**base, "log_level": LogLevel.error, "m": "loud"})
        lines = out.getvalue().splitlines()
        self.assertEqual([json.loads(x)["msg"] for x in lines], ["loud"])

    def test_unserialisable_event_still_logs_a_line(self) -> None:
        out = io.StringIO()
        JsonLineObserver(out)({"log_level": LogLevel.info, "log_time": "bad", "log_format": "{"})
        self.assertEqual(len(out.getvalue().splitlines()), 1)
