"""Views: each maglevd's view and the rendered pages, kept while what they show is unchanged.

The views carry, for each VIP more than one maglevd serves, whether their tables agree
(consistency.py): a view is rebuilt when its own daemon's state changes or another's does.
"""

from __future__ import annotations

import time
from typing import Any

from ..log import Logger
from .consistency import VipConsistency, compare
from .page import RowMemo, render_page
from .source import DaemonSource
from .view import DaemonState, DaemonStatus, ViewMemo, daemon_view, status_view

PAGE_CACHE = 16


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """States by identity (a new read is a new object), statuses by value."""
    return len(a) == len(b) and all(
        x is y or (isinstance(x, DaemonStatus) and x == y) for x, y in zip(a, b, strict=True)
    )


class Views:
    log = Logger()

    def __init__(self, sources: dict[str, DaemonSource]) -> None:
        self.sources = sources
        self._views: dict[str, tuple[tuple[Any, ...], dict[str, Any], int]] = {}
        self._serial = 0
        self._agreement: tuple[tuple[Any, ...], dict[str, VipConsistency]] = ((), {})
        # Rendered pages by what they show: 50 browsers polling one daemon cost one render per state.
        self._pages: dict[tuple[Any, ...], bytes] = {}
        # Per daemon, its backends' views and rows from the last read and render: a fresh read
        # rebuilds only the backends that changed.
        self._memos: dict[str, tuple[ViewMemo, RowMemo]] = {}

    def _memo(self, name: str) -> tuple[ViewMemo, RowMemo]:
        memo = self._memos.get(name)
        if memo is None:
            memo = self._memos[name] = (ViewMemo(), RowMemo())
        return memo

    def _states(self) -> tuple[DaemonState | None, ...]:
        return tuple(s.cached for s in self.sources.values())

    def consistency(self) -> dict[str, VipConsistency]:
        """The VIPs more than one maglevd serves, compared (from the states last read)."""
        states = self._states()
        if not _same(states, self._agreement[0]):
            shared = {n: list(s.cached.frontends) for n, s in self.sources.items() if s.cached is not None}
            self._agreement = (states, compare(shared) if len(shared) > 1 else {})
        return self._agreement[1]

    async def of(self, source: DaemonSource) -> dict[str, Any]:
        state = await source.state()
        key = (state, source.status, *self._states())
        cached = self._views.get(source.name)
        if cached is not None and _same(cached[0], key):
            return cached[1]
        view = daemon_view(source.status, state, self.consistency(), self._memo(source.name)[0])
        self._serial += 1
        self._views[source.name] = (key, view, self._serial)
        return view

    async def warm(self) -> None:
        """Read and render each daemon once at start, so the first visitor does not pay for first calls."""
        for source in self.sources.values():
            started = time.perf_counter()
            try:
                view = await self.of(source)
                render_page([status_view(source.status)], view, False, "", set(), memo=self._memo(source.name)[1])
            except Exception as e:
                self.log.info("web warm-up of {maglevd} failed: {error}", maglevd=source.name, error=str(e))
                continue
            ms = (time.perf_counter() - started) * 1000
            self.log.info("web page for {maglevd} ready in {ms:.0f} ms", event="web-ready", maglevd=source.name, ms=ms)

    async def page(self, scope: str, admin: bool, csrf: str, closed: set[str]) -> bytes:
        selected = await self.of(self.sources[scope])
        statuses = tuple(s.status for s in self.sources.values())
        key = (scope, self._views[scope][2], admin, frozenset(closed), statuses)
        page = self._pages.get(key)
        if page is None:
            daemons = [status_view(s.status) for s in self.sources.values()]
            page = render_page(daemons, selected, admin, csrf, closed, memo=self._memo(scope)[1]).encode()
            if len(self._pages) >= PAGE_CACHE:
                self._pages.clear()
            self._pages[key] = page
        return page


__all__ = ["Views"]
