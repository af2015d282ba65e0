"""The checker-isolation guard. Pure: time comes in as arguments.

When more than ``isolation-threshold`` of all backends go down within
``isolation-window``, the likely fault is the checker (its network namespace gone, its
uplink down), not the fleet. The guard then holds those backends at the state they had
before (and any that go down while it holds): the dataplane keeps serving them while
the health states, the events and the alert say what the checker sees. It lets go when
the share of backends down falls back to the threshold or below, or when an operator
releases it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping

from ..states import BackendState


class Held(Mapping[str, str]):
    """The live states with the held backends at their state from before the burst."""

    def __init__(self, live: Mapping[str, str], held: Mapping[str, str]) -> None:
        self._live = live
        self._held = held

    def __getitem__(self, key: str) -> str:
        return self._held[key] if key in self._held else self._live[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._live)

    def __len__(self) -> int:
        return len(self._live)


class Isolation:
    def __init__(self) -> None:
        self.recent: deque[tuple[float, str, str]] = deque()  # (when, backend, state before) of downs
        self.held: dict[str, str] = {}  # backend -> the state the dataplane keeps for it
        self.active = False
        self.since = 0.0
        self.fraction = 0.0  # of backends down when it tripped

    def transition(
        self, backend: str, old: str, new: str, now: float, total: int, threshold: float, window: float
    ) -> bool:
        """A backend changed state; True when the guard trips now."""
        if threshold <= 0 or total <= 0:
            return False
        if new == BackendState.DOWN and old == BackendState.UP:
            if self.active:
                self.held.setdefault(backend, old)
                return False
            self.recent.append((now, backend, old))
        while self.recent and self.recent[0][0] < now - window:
            self.recent.popleft()
        burst = {b: o for _, b, o in self.recent}
        if not self.active and len(burst) / total > threshold:
            self.active, self.since, self.fraction = True, now, len(burst) / total
            self.held = dict(burst)
            self.recent.clear()
            return True
        if self.active and new == BackendState.UP:
            self.held.pop(backend, None)  # it is back: nothing to hold
        return False

    def recovered(self, live: Mapping[str, str], threshold: float) -> bool:
        """Whether the share of backends the checker sees down is back to the threshold or below."""
        if not self.active or not live:
            return False
        down = sum(1 for s in live.values() if s == BackendState.DOWN)
        return down / len(live) <= threshold

    def release(self) -> list[str]:
        """Let go; the backends that were held."""
        held = sorted(self.held)
        self.active, self.held = False, {}
        self.recent.clear()
        return held
