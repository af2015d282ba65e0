"""Structured logging on twisted.logger.

Every maglev Logger sends its events through ``gate``, which

* forwards each event to the taps (the WatchEvents stream wants debug events
  even when the daemon logs at info), and
* passes events at or above the daemon's ``--log-level`` on to the global
  publisher, where the output observer writes them.

Output is one JSON object per line: ``time``, ``level``, ``event`` (a stable
event name such as ``starting`` or ``backend-transition``), ``msg`` and the
event's own fields.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    globalLogPublisher,
)
from twisted.logger import (
    Logger as _TwistedLogger,
)
from zope.interface import implementer

LEVELS = {
    "debug": LogLevel.debug,
    "info": LogLevel.info,
    "warn": LogLevel.warn,
    "warning": LogLevel.warn,
    "error": LogLevel.error,
}
_LEVEL_NAMES = {
    LogLevel.debug: "debug",
    LogLevel.info: "info",
    LogLevel.warn: "warn",
    LogLevel.error: "error",
    LogLevel.critical: "error",
}

LogEvent = dict[str, Any]
Tap = Callable[[LogEvent], None]


def parse_level(name: str) -> LogLevel:
    try:
        level: LogLevel = LEVELS[name.strip().lower()]
        return level
    except KeyError:
        raise ValueError(f"unknown log level {name!r}: use debug, info, warn or error") from None


@implementer(ILogObserver)
class LogGate:
    """The observer all maglev Loggers emit to."""

    def __init__(self, publisher: ILogObserver = globalLogPublisher) -> None:
        self.level = LogLevel.info
        self._publisher = publisher
        self._taps: list[Tap] = []

    def add_tap(self, tap: Tap) -> Callable[[], None]:
        self._taps.append(tap)
        return lambda: self._taps.remove(tap) if tap in self._taps else None

    def __call__(self, event: LogEvent) -> None:
        for tap in list(self._taps):
            try:
                tap(event)
            except Exception:  # a broken tap must never break logging
                pass
        if event["log_level"] >= self.level:
            self._publisher(event)


gate = LogGate()


class Logger(_TwistedLogger):
    """twisted.logger.Logger whose events go through ``gate``."""

    def __init__(self, namespace: str | None = None, source: object = None, observer: Any = None) -> None:
        super().__init__(namespace, source, observer if observer is not None else gate)


def set_level(level: LogLevel) -> None:
    gate.level = level


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return str(v)


def event_as_record(event: LogEvent) -> dict[str, Any]:
    """A log event as the flat JSON record we print."""
    when = datetime.fromtimestamp(event.get("log_time", 0), tz=UTC)
    record: dict[str, Any] = {
        "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": _LEVEL_NAMES.get(event.get("log_level", LogLevel.info), "info"),
    }
    if "event" in event:
        record["event"] = event["event"]
    record["msg"] = formatEvent(event)
    record["logger"] = event.get("log_namespace", "")
    for key, value in event.items():
        if key.startswith("log_") or key in ("event", "format", "message", "system", "isError", "time"):
            continue
        record[key] = _jsonable(value)
    failure = event.get("log_failure")
    if failure is not None:
        record["traceback"] = failure.getTraceback()
    return record


@implementer(ILogObserver)
class JsonLineObserver:
    def __init__(self, out: IO[str]) -> None:
        self._out = out

    def __call__(self, event: LogEvent) -> None:
        try:
            line = json.dumps(event_as_record(event), ensure_ascii=False)
        except Exception as e:  # never lose a line to a field that will not serialise
            line = json.dumps({"level": "error", "msg": f"unloggable event: {e}"})
        self._out.write(line + "\n")
        self._out.flush()


def observer_for(out: IO[str], level: LogLevel) -> ILogObserver:
    """JSON lines on ``out`` at ``level`` and above (Twisted's own events included)."""
    return FilteringLogObserver(JsonLineObserver(out), [LogLevelFilterPredicate(level)])


def observer() -> ILogObserver:
    """For ``twistd --logger=maglev.log.observer``: JSON lines on stdout."""
    return observer_for(sys.stdout, LogLevel.debug)
