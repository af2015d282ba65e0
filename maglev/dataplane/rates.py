"""Per-second rates of VPP's counters, from two successive reads. Pure."""

from __future__ import annotations

from collections.abc import Mapping


class CounterRates:
    """name -> kind -> per-second rate over the last interval between reads.

    A counter that went down (its VIP was recreated in a slot, which zeroes it) has no
    rate for that interval: 0, never a negative figure.
    """

    def __init__(self) -> None:
        self.rates: dict[str, dict[str, float]] = {}
        self._last: tuple[float, Mapping[str, Mapping[str, int]]] | None = None

    def update(self, now: float, counts: Mapping[str, Mapping[str, int]]) -> None:
        last = self._last
        self._last = (now, counts)
        if last is None or now <= last[0]:
            return
        dt = now - last[0]
        before = last[1]
        self.rates = {
            name: {k: max(v - before[name].get(k, 0), 0) / dt if name in before else 0.0 for k, v in kinds.items()}
            for name, kinds in counts.items()
        }


__all__ = ["CounterRates"]
