"""The states a backend and a frontend can be in: one enum each, for every package.

String enums: a state is its own name on the wire (gRPC, events, JSON, metrics labels),
so ``BackendState.UP == "up"`` and a mapping keyed by either finds the other. Pure.
"""

from __future__ import annotations

from enum import StrEnum


class BackendState(StrEnum):
    UNKNOWN = "unknown"
    UP = "up"
    DOWN = "down"
    PAUSED = "paused"
    DISABLED = "disabled"
    REMOVED = "removed"

    @property
    def probing(self) -> bool:
        """Whether probes are sent in this state."""
        return self is BackendState.UNKNOWN or self is BackendState.UP or self is BackendState.DOWN


class FrontendState(StrEnum):
    """up iff some backend has a weight; unknown iff no backend has a known state; else down;
    unsupported when the connected VPP cannot hold this kind of VIP (it is not sent then)."""

    UNKNOWN = "unknown"
    UP = "up"
    DOWN = "down"
    UNSUPPORTED = "unsupported"
    FAILING_OPEN = "failing-open"  # every backend down, on-all-down: keep (the last weights stay)


__all__ = ["BackendState", "FrontendState"]
