"""The garbage collector after a reload: what a reload drops is freed by refcounting (no
cycles left for a full collection to find), so the collection after a reload can walk
only the young generations and freeze the rest; every tenth one is full anyway."""

from __future__ import annotations

import json

from maglev.gcpolicy import FULL_EVERY, LongLivedObjects

from .helpers import run_scenario


def test_a_reload_leaves_nothing_for_a_full_collection() -> None:
    lines = run_scenario("test.gc_reload")
    reloads = [json.loads(line) for line in lines]
    assert reloads == [[], [], []], lines  # renamed, renamed back, each check changed


class Counted:
    """What is asked of gc, for the policy alone."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def collect(self, generation: int = 2) -> int:
        self.calls.append("collect" if generation == 2 else f"collect({generation})")
        return 0

    def unfreeze(self) -> None:
        self.calls.append("unfreeze")

    def freeze(self) -> None:
        self.calls.append("freeze")


def test_the_start_and_every_tenth_reload_collect_everything_the_others_the_young() -> None:
    counted = Counted()
    policy = LongLivedObjects(counted)  # type: ignore[arg-type]
    seen = []
    for _ in range(1 + 2 * FULL_EVERY):  # the start, then twenty reloads
        counted.calls.clear()
        full = policy.settle()
        assert counted.calls == (["unfreeze", "collect", "freeze"] if full else ["collect(1)", "freeze"])
        seen.append(full)
    assert [i for i, full in enumerate(seen) if full] == [0, FULL_EVERY, 2 * FULL_EVERY]


def test_it_settles_after_each_configuration_and_once_after_the_first_complete_sync() -> None:
    from twisted.internet.task import Clock

    from maglev.bus import EventBus
    from maglev.events import ConfigLoaded, LbSynced

    counted, bus, clock = Counted(), EventBus(), Clock()
    policy = LongLivedObjects(counted)  # type: ignore[arg-type]
    policy.watch(bus, clock)

    def settles() -> int:
        clock.advance(0)  # once that turn's work is done
        n = counted.calls.count("freeze")
        counted.calls.clear()
        return n

    loaded = ConfigLoaded(0.0, 1, "/x", 1, 1, 1)
    bus.publish(loaded)
    assert counted.calls == [] and settles() == 1  # not in the publisher's turn
    bus.publish(LbSynced(0.0, "all", ("web",), 3, (), complete=False))  # a warm-up's partial sync
    assert settles() == 0
    bus.publish(LbSynced(0.0, "all", ("web",), 3, (), complete=True))
    assert settles() == 1
    bus.publish(LbSynced(0.0, "all", ("web",), 0, (), complete=True))  # the periodic ones after it
    assert settles() == 0
    bus.publish(loaded)  # a reload
    assert settles() == 1
