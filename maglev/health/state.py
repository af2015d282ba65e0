"""A backend's health: the HAProxy counter, states, operator actions, history.

Pure logic, no Twisted: time comes in as ``now`` and randomness as ``rand``.

HAProxy's single health counter, in [0, rise+fall-1]; the backend is up iff
counter >= rise. A pass adds one, and reaching rise fills the counter to its
maximum; a failure takes one while above rise, and a failure at or below rise
empties it. So an up backend goes down after exactly ``fall`` consecutive
failures, a down one comes up after exactly ``rise`` consecutive passes, and
alternating results never flap. Entering ``unknown`` (new, restarted, resumed,
enabled) preloads rise-1 so a single pass decides, and any failure while
unknown goes straight to ``down``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from ..states import BackendState

State = BackendState  # the one enum, under the name this module's users know
# Compared at every probe and every read of every backend: an Enum's member is slow to look up.
_UP, _DOWN, _UNKNOWN = State.UP, State.DOWN, State.UNKNOWN


class OperatorError(Exception):
    """An operator action that the backend's state refuses (maps to FAILED_PRECONDITION)."""


class ProbeResult(NamedTuple):
    """A tuple, not a dataclass: the GC stops tracking it, and every backend keeps its last one."""

    ok: bool
    code: str  # HAProxy style: L4OK, L4TOUT, L4CON, L6RSP, L7OK, L7STS, ...
    detail: str = ""
    duration: float = 0.0


@dataclass(frozen=True, slots=True)
class Transition:
    """Slots: every backend keeps its last few (no __dict__ beside each, 48 bytes less)."""

    old: State
    new: State
    time: float  # wall clock, for people
    code: str
    detail: str
    counter: int


@dataclass(frozen=True, slots=True)
class Intervals:
    normal: float
    fast: float
    down: float


@functools.lru_cache(maxsize=256)
def intervals(normal: float, fast: float, down: float) -> Intervals:
    """One Intervals for every backend checked at these intervals (100,000 backends, a few checks)."""
    return Intervals(normal, fast, down)


class BackendHealth:
    """One backend's state machine. Every change returns the Transition it made, if any."""

    # One per backend, 100,000 of them: no __dict__ (docs/performance.md).
    __slots__ = (
        "name", "rise", "fall", "history", "history_size", "enabled", "last_result", "last_result_time",
        "since", "max_counter", "downs", "down_total", "state", "probing", "counter",
    )  # fmt: skip

    def __init__(
        self,
        name: str,
        rise: int,
        fall: int,
        history: int = 5,
        enabled: bool = True,
        now: float = 0.0,
    ) -> None:
        self.name = name
        self.rise = rise
        self.fall = fall
        # The newest last. A tuple, not a deque: an empty deque is a 0.5 KiB block, and
        # transitions are rare.
        self.history: tuple[Transition, ...] = ()
        self.history_size = history
        self.enabled = enabled
        self.last_result: ProbeResult | None = None
        self.last_result_time: float | None = None
        self.since = now
        self.max_counter = rise + fall - 1
        # HAProxy's Dwn and Dwntme: up -> down transitions, and the seconds spent down
        # before the current state (downtime() adds the current period while down)
        self.downs = 0
        self.down_total = 0.0
        self.state: State
        self.probing: bool
        if enabled:
            self._enter(State.UNKNOWN)
            self.counter = rise - 1
        else:
            self._enter(State.DISABLED)
            self.counter = 0

    def _enter(self, state: State) -> None:
        # Plain attributes, set together: both are read for every probe and every read of
        # every backend, and a property (or an Enum's) is slow to call.
        self.state = state
        self.probing = state.probing

    # --- probes ---------------------------------------------------------------------
    def record(self, result: ProbeResult, now: float) -> Transition | None:
        """Apply one probe result. Results arriving while not probing are ignored."""
        if not self.probing:
            return None
        self.last_result = result
        self.last_result_time = now
        state = self.state
        if result.ok:
            # as HAProxy: reaching rise means healthy now, with full credit
            self.counter = self.max_counter if self.counter + 1 >= self.rise else self.counter + 1
        elif self.counter > self.rise and state is _UP:
            self.counter -= 1
        else:
            self.counter = 0  # as HAProxy: a failure at or below rise means down
        if state is _UNKNOWN and not result.ok:
            return self._go(_DOWN, now, result.code, result.detail)
        new = _UP if self.counter >= self.rise else _DOWN
        if new is not state:
            return self._go(new, now, result.code, result.detail)
        return None

    def note_pass(self, result: ProbeResult, now: float) -> None:
        """A pass counted while fully up (the autopilot's): only the last result changes.

        Never a transition, so folding the autopilot's counts in from a read publishes
        nothing. Ignored unless fully up, as ``record`` would have changed nothing else.
        """
        if result.ok and self.fully_up:
            self.last_result = result
            self.last_result_time = now

    @property
    def fully_up(self) -> bool:
        """Up with a full counter: a passing probe changes nothing."""
        return self.state is _UP and self.counter == self.max_counter

    def next_interval(self, intervals: Intervals, rand: Callable[[], float]) -> float:
        """Fast while unknown or between the bounds, normal when fully up, slow when fully down; ±10%."""
        if self.fully_up:
            base = intervals.normal
        elif self.state is _DOWN and self.counter == 0:
            base = intervals.down
        else:
            base = intervals.fast
        return base * (0.9 + 0.2 * rand())

    # --- operator actions -----------------------------------------------------------
    def pause(self, now: float) -> Transition | None:
        self._refuse_if(State.DISABLED, "pause", "it is disabled; enable it first")
        self._refuse_if(State.REMOVED, "pause", "it was removed from the configuration")
        if self.state is State.PAUSED:
            return None
        return self._go(State.PAUSED, now, "paused", "paused by operator")

    def resume(self, now: float) -> Transition | None:
        self._refuse_if(State.DISABLED, "resume", "it is disabled; enable it instead")
        self._refuse_if(State.REMOVED, "resume", "it was removed from the configuration")
        if self.state is not State.PAUSED:
            return None
        return self._enter_unknown(now, "resumed", "resumed by operator")

    def disable(self, now: float) -> Transition | None:
        self._refuse_if(State.REMOVED, "disable", "it was removed from the configuration")
        self.enabled = False
        if self.state is State.DISABLED:
            return None  # only the flag is synced
        self.counter = 0
        return self._go(State.DISABLED, now, "disabled", "disabled by operator")

    def enable(self, now: float) -> Transition | None:
        self._refuse_if(State.REMOVED, "enable", "it was removed from the configuration")
        self.enabled = True
        if self.state is not State.DISABLED:
            return None  # keyed on the state, not the flag: repairs a stale flag
        return self._enter_unknown(now, "enabled", "enabled by operator")

    # --- configuration --------------------------------------------------------------
    def restart(self, rise: int, fall: int, now: float, detail: str) -> Transition | None:
        """The health check changed: start over in unknown (or stay disabled/paused)."""
        self.rise, self.fall = rise, fall
        self.max_counter = rise + fall - 1
        if self.state in (State.DISABLED, State.PAUSED, State.REMOVED):
            self.counter = min(self.counter, self.max_counter)
            return None
        return self._enter_unknown(now, "restarted", detail)

    def remove(self, now: float) -> Transition | None:
        if self.state is State.REMOVED:
            return None
        return self._go(State.REMOVED, now, "removed", "removed from the configuration")

    def resize_history(self, size: int) -> None:
        self.history_size = size
        self.history = self.history[-size:] if size else ()

    # --- internals ------------------------------------------------------------------
    def _refuse_if(self, state: State, action: str, why: str) -> None:
        if self.state is state:
            raise OperatorError(f"cannot {action} backend {self.name}: {why}")

    def _enter_unknown(self, now: float, code: str, detail: str) -> Transition | None:
        self.counter = self.rise - 1
        if self.state is _UNKNOWN:
            return None
        return self._go(State.UNKNOWN, now, code, detail)

    def downtime(self, now: float) -> float:
        """Seconds spent down so far, the current period included."""
        if self.state is _DOWN:
            return self.down_total + max(now - self.since, 0.0)
        return self.down_total

    def _go(self, new: State, now: float, code: str, detail: str) -> Transition:
        t = Transition(self.state, new, now, code, detail, self.counter)
        if self.state is _DOWN:
            self.down_total += max(now - self.since, 0.0)
        elif self.state is _UP and new is _DOWN:
            self.downs += 1
        self._enter(new)
        self.since = now
        size = self.history_size
        self.history = (*self.history, t)[-size:] if size else ()
        return t
