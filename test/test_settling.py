"""Settling: touched frontends worked out once a turn, a bounded number a turn, oldest first."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from maglev.dataplane.settling import Settling


def settling(per_turn: int = 3) -> tuple[Clock, Settling, list[list[str]]]:
    clock, batches = Clock(), list[list[str]]()
    return clock, Settling(clock, batches.append, per_turn), batches


def test_each_touched_frontend_is_settled_once_a_bounded_number_a_turn_oldest_first() -> None:
    clock, turns = Clock(), list[tuple[list[str], int]]()

    def settle(batch: list[str]) -> None:
        turns.append((batch, len(clock.getDelayedCalls())))  # the next turn, if one is due
        if len(turns) == 1:
            s.touch(["a", "f"])  # a again after it was settled: once more, after the older ones

    s = Settling(clock, settle, per_turn=3)
    s.touch(["e", "a", "d"])
    s.touch(["a", "b", "c"])  # a again while it waits: once
    assert turns == [], "not in the turn that touched them"
    clock.advance(0)
    assert turns == [(["e", "a", "d"], 1), (["b", "c", "a"], 1), (["f"], 0)]
    assert clock.getDelayedCalls() == [], "nothing left, nothing scheduled"


def test_a_settle_that_fails_leaves_the_rest_for_the_next_turn() -> None:
    clock, seen = Clock(), list[list[str]]()

    def settle(batch: list[str]) -> None:
        seen.append(batch)
        if len(seen) == 1:
            raise RuntimeError("boom")

    s = Settling(clock, settle, per_turn=1)
    s.touch(["a", "b"])
    with pytest.raises(RuntimeError):
        clock.advance(0)
    clock.advance(0)
    assert seen == [["a"], ["b"]]


def test_once_stopped_nothing_waiting_is_settled() -> None:
    clock, s, batches = settling()
    s.touch(["a"])
    s.stop()
    clock.advance(0)
    assert batches == [] and clock.getDelayedCalls() == []
