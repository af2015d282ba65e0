"""Drainer, on the reactor thread: the timing side of drain before remove (the rules are
drain.py's). It says what starts, ends and finishes draining, and wakes the sync when a
drain's time is up."""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from ..log import Logger
from .drain import DrainingAS, DrainingVip, Drains


def _what(d: DrainingAS | DrainingVip) -> dict[str, object]:
    if isinstance(d, DrainingVip):
        return {"frontend": d.vip.frontend, "vip": str(d.vip.key), "why": "frontend removed from the configuration"}
    return {"frontend": d.frontend, "address": str(d.address), "backend": d.backend, "pool": d.pool, "why": d.why}


class Drainer:
    log = Logger()

    def __init__(self, drains: Drains, clock: IReactorTime, sync: Callable[[], object]) -> None:
        self.drains = drains
        self.clock = clock
        self.sync = sync
        self._timer: IDelayedCall | None = None

    def started(self, drains: list[DrainingAS] | list[DrainingAS | DrainingVip]) -> None:
        for d in drains:
            self.log.info(
                "draining {frontend} {what} for {left:.0f} s: {why}",
                event="lb-drain-start",
                left=d.left(self.clock.seconds()),
                what=_what(d).get("address", _what(d).get("vip")),
                **_what(d),
            )
        self.schedule()

    def reloaded(self, started: list[DrainingAS | DrainingVip], ended: list[str]) -> None:
        """A reload's drains: those it ended (wanted again), those it started."""
        for w in ended:
            self.log.info("drain of {what} cancelled: wanted again", event="lb-drain-cancel", what=w)
        self.started(started)

    def schedule(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        deadline = self.drains.next_deadline()
        if deadline is not None:
            self._timer = self.clock.callLater(max(0.0, deadline - self.clock.seconds()), self._expire)

    def _expire(self) -> None:
        self._timer = None
        done = self.drains.expire(self.clock.seconds())
        for d in done:
            fields = _what(d)
            self.log.info(
                "drained {frontend} {what}: removing it", event="lb-drain-done",
                what=fields.get("address", fields.get("vip")), **fields,
            )  # fmt: skip
        if done:
            self.sync()
        self.schedule()

    def stop(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
