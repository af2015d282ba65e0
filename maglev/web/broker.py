"""EventRing: the server-sent-event history behind ``Last-Event-ID`` resume.

Plain logic (no Twisted): events get ids ``<epoch>-<seq>``, where the epoch is
this process's start in nanoseconds, so an id from before a restart is never
mistaken for a current one. A reconnecting client inside the ring (30 s, 2,000
events) gets exactly what it missed; anyone else gets ``None`` and must resync.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_AGE = 30.0
MAX_EVENTS = 2000


@dataclass(frozen=True)
class SentEvent:
    id: str
    seq: int
    time: float
    kind: str  # the SSE "event:" name
    data: str  # JSON text
    private: bool  # only for admin streams (log lines)

    def frame(self) -> bytes:
        return f"id: {self.id}\nevent: {self.kind}\ndata: {self.data}\n\n".encode()


class EventRing:
    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        max_age: float = MAX_AGE,
        max_events: int = MAX_EVENTS,
        epoch: int | None = None,
    ) -> None:
        self.clock = clock
        self.max_age = max_age
        self.epoch = str(time.time_ns() if epoch is None else epoch)
        self.seq = 0
        self.ring: deque[SentEvent] = deque(maxlen=max_events)

    def add(self, kind: str, data: dict[str, Any], private: bool = False) -> SentEvent:
        self.seq += 1
        event = SentEvent(
            f"{self.epoch}-{self.seq}",
            self.seq,
            self.clock(),
            kind,
            json.dumps(data, separators=(",", ":")),
            private,
        )
        self.ring.append(event)
        self._expire()
        return event

    def _expire(self) -> None:
        horizon = self.clock() - self.max_age
        while self.ring and self.ring[0].time < horizon:
            self.ring.popleft()

    def since(self, last_id: str) -> list[SentEvent] | None:
        """The events after ``last_id``; None when they cannot all be replayed."""
        epoch, _, seq_text = last_id.strip().rpartition("-")
        if epoch != self.epoch or not seq_text.isdigit():
            return None
        seq = int(seq_text)
        if seq > self.seq:
            return None
        self._expire()
        oldest = self.ring[0].seq if self.ring else self.seq + 1
        if seq + 1 < oldest:  # some of what the client missed has left the ring
            return None
        return [e for e in self.ring if e.seq > seq]
