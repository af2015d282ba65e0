"""maglevt's screen: a pure renderer (lines for a width and height) and a curses driver."""

from __future__ import annotations

import curses
from typing import Any

from .stats import ACTIVE_FOR, Board


def render(board: Board, width: int, height: int, now: float, title: str, header: str | None) -> list[str]:
    """The whole screen as lines, cut to ``width`` and ``height``."""
    lines = [f"maglevt on {title}   q: quit"[:width], ""]
    head = f"{'VIP':<40} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7} {'N':>8} {'FAIL':>6} {'OK%':>7}  LAST"
    lines.append(head[:width])
    for stats in board.vips.values():
        s = stats.summary(now)
        ok = f"{s['ok_percent']:.2f}" if s["ok_percent"] is not None else "-"
        row = (
            f"{stats.name[:40]:<40} {s['p50_ms']:>7.1f} {s['p95_ms']:>7.1f} {s['p99_ms']:>7.1f} {s['max_ms']:>7.1f} "
            f"{s['total']:>8} {s['failed']:>6} {ok:>7}  {s['last']}"
        )
        lines.append(row[:width])
        if header and stats.tally:
            parts = []
            for value, n in sorted(stats.tally.items(), key=lambda kv: -kv[1]):
                mark = "*" if now - stats.seen[value] <= ACTIVE_FOR else " "
                parts.append(f"{mark}{value}={n}")
            lines.append(("    " + header + ": " + "  ".join(parts))[:width])
    counts = board.error_totals
    lines.append("")
    lines.append(("errors: " + "  ".join(f"{k}={v}" for k, v in counts.items()))[:width])
    room = max(height - len(lines), 0)
    for e in list(board.errors)[-room:] if room else []:
        lines.append(f"  {e.kind:<8} {e.vip[:40]:<40} {e.detail}"[:width])
    return lines[:height]


class Screen:
    """Draws with curses; reads keys without blocking (the reactor watches stdin)."""

    def __init__(self) -> None:
        self.win: Any = curses.initscr()
        curses.noecho()
        curses.cbreak()
        curses.curs_set(0)
        self.win.keypad(True)
        self.win.nodelay(True)

    def size(self) -> tuple[int, int]:
        h, w = self.win.getmaxyx()
        return w, h

    def draw(self, lines: list[str]) -> None:
        w, h = self.size()
        self.win.erase()
        for y, line in enumerate(lines[:h]):
            try:
                self.win.addnstr(y, 0, line, max(w - 1, 0))
            except curses.error:
                pass
        self.win.refresh()

    def keys(self) -> list[int]:
        out: list[int] = []
        while True:
            k = self.win.getch()
            if k == -1:
                return out
            if k == curses.KEY_RESIZE:
                curses.update_lines_cols()
            out.append(k)

    def close(self) -> None:
        curses.nocbreak()
        self.win.keypad(False)
        curses.echo()
        curses.endwin()
