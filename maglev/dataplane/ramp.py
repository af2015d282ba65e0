"""Slow start: a backend that comes up ramps from a small share to its weight. Pure:
time comes in as arguments.

After a backend goes up (not during the start's warm-up, so a restart is neutral, and
never because VPP reconnected: that is no transition), each pool member's VPP weight is
``ceil(weight * max(1, s) / D)`` at whole second ``s`` of its slow start ``D``, so a cold
cache or JIT warms up before it takes its full share. Steps are whole seconds: at most
one weight update per second per backend, however many ramp (the ticks are batched). A
backend that goes down mid-ramp starts over when it is back.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ..config import Config
from ..states import BackendState


def ramp_weight(weight: int, elapsed: int, duration: float) -> int:
    """The weight at whole second ``elapsed`` of a ``duration`` seconds slow start."""
    if duration <= 0 or elapsed >= duration or weight <= 0:
        return weight
    return max(1, math.ceil(weight * max(1, elapsed) / duration))


class Ramps:
    def __init__(self) -> None:
        self.started: dict[str, float] = {}  # backend -> when it went up
        self.elapsed: dict[str, int] = {}  # backend -> whole seconds into its ramp (what desired reads)

    def transition(self, backend: str, old: str, new: str, now: float, warm: bool) -> bool:
        """A backend changed state; True when it starts a ramp."""
        if new == BackendState.UP and old != BackendState.UP and warm:
            self.started[backend] = now
            self.elapsed[backend] = 0
            return True
        if new != BackendState.UP:
            self.started.pop(backend, None)
            self.elapsed.pop(backend, None)
        return False

    def tick(self, now: float, longest: Callable[[str], float]) -> list[str]:
        """Advance every ramp to the whole second it is at; the backends whose step changed
        (a finished ramp included: its full weight is the last step)."""
        changed = []
        for backend, start in list(self.started.items()):
            elapsed = int(now - start)
            if elapsed != self.elapsed[backend]:
                self.elapsed[backend] = elapsed
                changed.append(backend)
            if elapsed >= longest(backend):
                del self.started[backend], self.elapsed[backend]
        return changed

    def forget(self, keep: Callable[[str], bool]) -> None:
        for backend in [b for b in self.started if not keep(b)]:
            del self.started[backend], self.elapsed[backend]


class SlowStarts:
    """Each backend's longest slow start, worked out once per config: every transition asks,
    and walking every frontend's pools cost 0.25 ms a transition with 100 frontends."""

    def __init__(self) -> None:
        self._for: Config | None = None
        self._longest: dict[str, float] = {}

    def longest(self, cfg: Config, backend: str) -> float:
        if self._for is not cfg:
            longest: dict[str, float] = {}
            for fe in cfg.frontends.values():
                for p in fe.pools:
                    for m in p.members:
                        d = fe.slow_start_of(p, cfg.backends[m.backend])
                        if d > longest.get(m.backend, 0.0):
                            longest[m.backend] = d
            self._for, self._longest = cfg, longest
        return self._longest.get(backend, 0.0)
