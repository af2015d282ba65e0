"""Settling: the frontends whose backends changed, worked out a bounded number a turn, on the
reactor thread.

Transitions come in bursts: one timer tick settles many probes, and a start brings
thousands of backends up. Each VIP they touch is worked out once per reactor turn, not
once per backend; and at most ``per_turn`` VIPs a turn, so the first results of 10,000
backends (every VIP touched, turn after turn) leave the API and the probes their turns.
The rest follow in the next turns, oldest first. A single transition touches a VIP or two
and is settled in the turn after it, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import islice

from twisted.internet.interfaces import IDelayedCall, IReactorTime

SETTLE_PER_TURN = 10  # VIPs of 100 backends: about 2.5 ms of a turn


class Settling:
    def __init__(
        self, reactor: IReactorTime, settle: Callable[[list[str]], None], per_turn: int = SETTLE_PER_TURN
    ) -> None:
        self.reactor = reactor
        self.settle = settle
        self.per_turn = per_turn
        self._waiting: dict[str, None] = {}  # in the order first touched
        self._call: IDelayedCall | None = None

    def touch(self, frontends: Iterable[str]) -> None:
        """These frontends' backends changed: settle them in a coming turn."""
        for name in frontends:
            self._waiting.setdefault(name)
        if self._waiting and self._call is None:
            self._call = self.reactor.callLater(0, self._turn)

    def _turn(self) -> None:
        self._call = None
        waiting = self._waiting
        batch = list(islice(waiting, self.per_turn))
        for name in batch:
            del waiting[name]
        if waiting:  # before settling: a failure there must not strand the rest
            self._call = self.reactor.callLater(0, self._turn)
        self.settle(batch)

    def stop(self) -> None:
        """Nothing more is settled (the service stopped)."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        self._waiting.clear()


__all__ = ["SETTLE_PER_TURN", "Settling"]
