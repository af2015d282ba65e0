"""The backend state machine, as tables of cases (upstream behaviours 10-18, 23)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maglev.health.state import BackendHealth, Intervals, OperatorError, ProbeResult, State

P = ProbeResult(True, "L7OK")
F = ProbeResult(False, "L4CON", "connection refused")


def run(rise: int, fall: int, results: str, start: int | None = None) -> tuple[list[str], list[int]]:
    """Feed 'p'/'f' results; return the state and counter after each."""
    b = BackendHealth("b", rise, fall)
    if start is not None:
        b.state, b.counter = (State.UP if start >= rise else State.DOWN), start
    states, counters = [], []
    for i, r in enumerate(results):
        b.record(P if r == "p" else F, float(i))
        states.append(b.state.value)
        counters.append(b.counter)
    return states, counters


@pytest.mark.parametrize(
    "rise, fall, start, results, states, counters",
    [
        # new backend: one pass is up, one failure is down (16)
        (2, 3, None, "p", ["up"], [4]),
        (2, 3, None, "f", ["down"], [0]),
        (3, 2, None, "f", ["down"], [0]),
        (1, 1, None, "p", ["up"], [1]),
        (1, 1, None, "f", ["down"], [0]),
        # going up fills the counter: then it takes exactly `fall` failures to go down (17)
        (2, 3, 0, "ppfff", ["down", "up", "up", "up", "down"], [1, 4, 3, 2, 0]),
        (3, 2, 0, "pppff", ["down", "down", "up", "up", "down"], [1, 2, 4, 3, 0]),
        # from 0 it takes `rise` consecutive passes to go up; a failure on the way starts over (17)
        (3, 2, 0, "ppfppp", ["down", "down", "down", "down", "down", "up"], [1, 2, 0, 1, 2, 4]),
        # counter capped at rise+fall-1 and floored at 0 (18)
        (2, 3, 4, "pppp", ["up"] * 4, [4, 4, 4, 4]),
        (2, 3, 0, "ffff", ["down"] * 4, [0, 0, 0, 0]),
        # a pass while up restores full credit
        (2, 3, 4, "ffpff", ["up", "up", "up", "up", "up"], [3, 2, 4, 3, 2]),
        # alternating results never flap, up or down
        (2, 3, 4, "fpfpfp", ["up"] * 6, [3, 4, 3, 4, 3, 4]),
        (2, 3, 0, "pfpfpf", ["down"] * 6, [1, 0, 1, 0, 1, 0]),
        (1, 3, 3, "fff", ["up", "up", "down"], [2, 1, 0]),
    ],
)
def test_counter(rise: int, fall: int, start: int | None, results: str, states: list[str], counters: list[int]) -> None:
    assert run(rise, fall, results, start) == (states, counters)


def test_transitions_are_recorded_with_code_and_bounded() -> None:
    b = BackendHealth("web0", 1, 1, history=3, now=0.0)
    for i in range(10):
        b.record(P if i % 2 == 0 else F, float(i))
    assert len(b.history) == 3
    last = b.history[-1]
    assert (last.old, last.new, last.code, last.time) == (State.UP, State.DOWN, "L4CON", 9.0)
    assert b.last_result == F and b.last_result_time == 9.0


NOW = 100.0


def backend(state: State, enabled: bool = True) -> BackendHealth:
    b = BackendHealth("web0", 2, 3)
    b._enter(state)  # as a transition does, without one
    b.enabled = enabled
    b.counter = {State.UP: 4, State.DOWN: 0}.get(state, 1)
    return b


# (state, action, new state or exception, transition emitted?, enabled flag after)
OPERATOR = [
    (State.UP, "pause", State.PAUSED, True, True),
    (State.DOWN, "pause", State.PAUSED, True, True),
    (State.UNKNOWN, "pause", State.PAUSED, True, True),
    (State.PAUSED, "pause", State.PAUSED, False, True),
    (State.DISABLED, "pause", OperatorError, False, False),
    (State.REMOVED, "pause", OperatorError, False, True),
    (State.PAUSED, "resume", State.UNKNOWN, True, True),
    (State.UP, "resume", State.UP, False, True),
    (State.DISABLED, "resume", OperatorError, False, False),
    (State.UP, "disable", State.DISABLED, True, False),
    (State.PAUSED, "disable", State.DISABLED, True, False),
    (State.DISABLED, "disable", State.DISABLED, False, False),  # 11: no duplicate transition
    (State.DISABLED, "enable", State.UNKNOWN, True, True),
    (State.UP, "enable", State.UP, False, True),
    (State.REMOVED, "enable", OperatorError, False, True),
]


@pytest.mark.parametrize("state, action, expect, transition, enabled", OPERATOR)
def test_operator_actions(state: State, action: str, expect: object, transition: bool, enabled: bool) -> None:
    b = backend(state, enabled=state is not State.DISABLED)
    if expect is OperatorError:
        with pytest.raises(OperatorError, match=f"cannot {action} backend web0"):
            getattr(b, action)(NOW)
        assert b.state is state
        return
    t = getattr(b, action)(NOW)
    assert b.state is expect
    assert (t is not None) is transition
    assert b.enabled is enabled
    if expect is State.UNKNOWN:
        assert b.counter == b.rise - 1, "entering unknown preloads rise-1"


def test_enable_is_keyed_on_state_not_flag() -> None:
    b = backend(State.DISABLED)
    b.enabled = True  # inconsistent flag: still enables (10)
    assert b.enable(NOW) is not None and b.state is State.UNKNOWN
    b = backend(State.UP)
    b.enabled = False  # stale flag on a probing backend: only the flag is synced
    assert b.enable(NOW) is None and b.enabled


def test_results_while_not_probing_are_ignored() -> None:
    for state in (State.PAUSED, State.DISABLED, State.REMOVED):
        b = backend(state)
        assert b.record(F, NOW) is None
        assert b.state is state and b.last_result is None


def test_resume_keeps_history_and_one_pass_decides() -> None:
    b = BackendHealth("web0", 3, 2)
    b.record(P, 1.0)
    b.pause(2.0)
    b.resume(3.0)
    assert [(t.old.value, t.new.value) for t in b.history] == [
        ("unknown", "up"),
        ("up", "paused"),
        ("paused", "unknown"),
    ]
    b.record(P, 4.0)
    assert b.state is State.UP


def test_start_disabled() -> None:
    b = BackendHealth("web0", 2, 3, enabled=False)
    assert b.state is State.DISABLED and not b.enabled


def test_restart_and_remove() -> None:
    b = backend(State.DOWN)
    t = b.restart(3, 3, NOW, "health check changed")
    assert t is not None and b.state is State.UNKNOWN and b.counter == 2 and b.max_counter == 5
    p = backend(State.PAUSED)
    assert p.restart(2, 2, NOW, "changed") is None and p.state is State.PAUSED
    t = b.remove(NOW)
    assert t is not None and t.new is State.REMOVED
    assert b.remove(NOW) is None


@pytest.mark.parametrize(
    "state, counter, rand, expected",
    [
        (State.UNKNOWN, 1, 0.5, 1.0),  # unknown: fast
        (State.UP, 2, 0.5, 1.0),  # between bounds: fast
        (State.UP, 4, 0.5, 2.0),  # fully up: normal
        (State.DOWN, 1, 0.5, 1.0),  # between bounds: fast
        (State.DOWN, 0, 0.5, 5.0),  # fully down: down interval
        (State.UP, 4, 0.0, 1.8),  # -10%
        (State.UP, 4, 1.0, 2.2),  # +10%
    ],
)
def test_next_interval(state: State, counter: int, rand: float, expected: float) -> None:
    b = BackendHealth("b", 2, 3)
    b.state, b.counter = state, counter
    assert b.next_interval(Intervals(normal=2.0, fast=1.0, down=5.0), lambda: rand) == pytest.approx(expected)


@settings(derandomize=True, deadline=None, max_examples=300)
@given(st.integers(1, 6), st.integers(1, 6), st.lists(st.booleans(), max_size=60))
def test_hysteresis_property(rise: int, fall: int, results: list[bool]) -> None:
    """Up needs exactly `rise` consecutive passes from down; down exactly `fall` failures from up."""
    b = BackendHealth("b", rise, fall)
    streak_ok = streak_fail = 0
    for i, ok in enumerate(results):
        before = b.state
        b.record(P if ok else F, float(i))
        streak_ok, streak_fail = (streak_ok + 1, 0) if ok else (0, streak_fail + 1)
        assert 0 <= b.counter <= b.max_counter
        assert (b.state is State.UP) == (b.counter >= rise)
        if before is State.DOWN and b.state is State.UP:
            assert streak_ok == rise
        if before is State.UP and b.state is State.DOWN:
            assert streak_fail == fall
        if before is State.UNKNOWN:
            assert b.state is (State.UP if ok else State.DOWN)
        if before is State.UP and not ok and streak_fail < fall:
            assert b.state is State.UP
        if before is State.DOWN and ok and streak_ok < rise:
            assert b.state is State.DOWN


@pytest.mark.parametrize(
    ("results", "fully_up"),
    [
        ("", False),  # unknown
        ("+", True),  # unknown -> up with full credit
        ("+-", False),  # up, counter one below full
        ("+--+", True),  # back to full
        ("-", False),  # down
        ("-+", False),  # down, one pass of the two rise needs
        ("-++", True),  # up: reaching rise gives full credit
    ],
)
def test_fully_up_means_up_with_a_full_counter(results: str, fully_up: bool) -> None:
    h = BackendHealth("b", rise=2, fall=3)
    for r in results:
        h.record(ProbeResult(r == "+", "L4OK" if r == "+" else "L4CON"), 0.0)
    assert h.fully_up is fully_up


@pytest.mark.parametrize(
    ("results", "noted"),
    [
        ("+", True),  # fully up: the autopilot's pass is the last result
        ("+-", False),  # up but not full: a pass would change the counter, so it is not noted
        ("-", False),  # down
        ("", False),  # unknown
    ],
)
def test_a_noted_pass_changes_nothing_but_the_last_result(results: str, noted: bool) -> None:
    h = BackendHealth("b", rise=2, fall=3)
    for r in results:
        h.record(ProbeResult(r == "+", "L4OK" if r == "+" else "L4CON"), 1.0)
    before = (h.state, h.counter, tuple(h.history), h.last_result, h.last_result_time)
    passed = ProbeResult(True, "L4OK", "autopilot", 0.002)
    h.note_pass(passed, 9.0)
    assert (h.state, h.counter, tuple(h.history)) == before[:3]
    assert (h.last_result, h.last_result_time) == ((passed, 9.0) if noted else before[3:])


@pytest.mark.parametrize(
    "results, downs, downtime",
    [
        ("", 0, 0.0),  # unknown: never down
        ("f", 0, 9.0),  # unknown -> down at t=0: down until now (9), not a flap from up
        ("pfff", 1, 6.0),  # up at 0, down at 3 (fall 3): down 3..9
        ("pfffpp", 1, 2.0),  # down 3..5, up again at 5
        ("pfffpppfff", 2, 2.0),  # down 3..5 (full credit at 5), and again at 9: nothing yet
    ],
)
def test_downs_and_downtime_as_haproxy_counts_them(results: str, downs: int, downtime: float) -> None:
    b = BackendHealth("b", 2, 3)
    for i, r in enumerate(results):
        b.record(P if r == "p" else F, float(i))
    assert b.downs == downs
    assert b.downtime(9.0) == pytest.approx(downtime)
