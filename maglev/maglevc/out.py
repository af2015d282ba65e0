"""maglevc's output: colours (only where asked), labels and states in their columns, ages."""

from __future__ import annotations

import sys
import time
from typing import Any

from ..ages import format_age

BLUE, RED, GREEN, YELLOW, RESET = "\033[34m", "\033[31m", "\033[32m", "\033[33m", "\033[0m"
STATE_COLOUR = {
    "up": GREEN, "down": RED, "unknown": YELLOW, "paused": YELLOW, "disabled": RED, "removed": RED, "unsupported": RED,
    "draining": YELLOW,
}  # fmt: skip


class Out:
    """Printing with optional colour; labels and states keep their column widths."""

    def __init__(self, colour: bool, stream: Any = None) -> None:
        self.colour = colour
        self.stream = stream or sys.stdout

    def paint(self, text: str, colour: str, width: int = 0) -> str:
        padded = text.ljust(width) if width else text
        return f"{colour}{padded}{RESET}" if self.colour else padded

    def label(self, text: str, width: int = 16) -> str:
        return self.paint(text, BLUE, width)

    def state(self, text: str, width: int = 0) -> str:
        return self.paint(text, STATE_COLOUR.get(text, ""), width) if text in STATE_COLOUR else text.ljust(width)

    def line(self, text: str = "") -> None:
        print(text, file=self.stream)

    def kv(self, key: str, value: object) -> None:
        self.line(f"{self.label(key)} {value}")

    def error(self, text: str) -> None:
        print(self.paint(text, RED), file=sys.stderr)


def clock(ns: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ns / 1e9))


def age(since: float, now: float | None = None) -> str:
    return format_age((now or time.time()) - since)


def ago(when: float, now: float | None = None) -> str:
    """``42s ago``, ``1h12m ago``; ``just now`` under a second (never "now ago")."""
    text = age(when, now)
    return "just now" if text == "now" else f"{text} ago"


__all__ = ["Out", "age", "ago", "clock"]


def left(seconds: float) -> str:
    """A time left, to the second: ``42s``, ``29m 59s``, ``1h 2m``."""
    s = max(0, round(seconds))
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60}m"
    if s >= 60:
        return f"{s // 60}m {s % 60}s"
    return f"{s}s"
