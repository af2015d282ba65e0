"""Flap dampening, RFC 2439's scheme per backend. Pure: time comes in as arguments.

Each up -> down transition adds ``penalty`` to the backend's figure of merit, which
decays by half every ``half-life``. Above ``suppress`` the backend is kept out of its
pools (weight 0, no flush) even while its checks pass, until the figure decays below
``reuse``. The figure is capped so that no suppression outlasts four half-lives
(RFC 2439's maximum suppress time).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..config import Dampening
from ..states import BackendState

MAX_HALF_LIVES = 4


@dataclass
class Merit:
    penalty: float  # at ``at``
    at: float
    suppressed: bool = False

    def now(self, now: float, half_life: float) -> float:
        return float(self.penalty * 2.0 ** (-(now - self.at) / half_life))


class Flaps:
    def __init__(self) -> None:
        self.merits: dict[str, Merit] = {}

    @property
    def suppressed(self) -> frozenset[str]:
        return frozenset(b for b, m in self.merits.items() if m.suppressed)

    def transition(self, backend: str, old: str, new: str, now: float, d: Dampening | None) -> bool:
        """A backend changed state; True when it becomes suppressed."""
        if d is None or not (old == BackendState.UP and new == BackendState.DOWN):
            return False
        m = self.merits.get(backend)
        current = m.now(now, d.half_life) if m is not None else 0.0
        ceiling = d.reuse * 2.0**MAX_HALF_LIVES
        merit = Merit(min(current + d.penalty, ceiling), now, m.suppressed if m is not None else False)
        self.merits[backend] = merit
        if not merit.suppressed and merit.penalty > d.suppress:
            merit.suppressed = True
            return True
        return False

    def penalty(self, backend: str, now: float, d: Dampening | None) -> float:
        m = self.merits.get(backend)
        return 0.0 if m is None or d is None else m.now(now, d.half_life)

    def reuse_at(self, backend: str, d: Dampening) -> float | None:
        """When a suppressed backend's figure falls to ``reuse``."""
        m = self.merits.get(backend)
        if m is None or not m.suppressed:
            return None
        return m.at + d.half_life * math.log2(m.penalty / d.reuse) if m.penalty > d.reuse else m.at

    def reuse(self, now: float, settings: dict[str, Dampening]) -> list[str]:
        """Lift the suppressions whose figure has decayed below reuse; forget decayed figures."""
        lifted = []
        for backend, m in list(self.merits.items()):
            d = settings.get(backend)
            if d is None:
                del self.merits[backend]
                continue
            value = m.now(now, d.half_life)
            if m.suppressed and value < d.reuse + 1e-9:
                m.suppressed = False
                lifted.append(backend)
            if not m.suppressed and value < 1.0:
                del self.merits[backend]
        return lifted

    def undampened(self, settings: dict[str, Dampening]) -> list[str]:
        """Forget the figures of backends no longer dampened (a reload); those it suppressed, now free."""
        freed = []
        for backend in [b for b in self.merits if b not in settings]:
            if self.merits.pop(backend).suppressed:
                freed.append(backend)
        return freed

    def next_reuse(self, settings: dict[str, Dampening]) -> float | None:
        times = [t for b in self.suppressed if b in settings if (t := self.reuse_at(b, settings[b])) is not None]
        return min(times) if times else None
