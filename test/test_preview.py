"""Change previews: pure cases, and the preview equal to the emulator's table once the change is made."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

import pytest_twisted

from maglev import lbtable
from maglev.config import Encap, load_config
from maglev.dataplane.desired import DesiredAS, DesiredVip, VipKey
from maglev.dataplane.plan import ObservedAS, ObservedVip
from maglev.dataplane.preview import VipChange, desired_table, preview, vip_change
from maglev.dataplane.tables import observed_table
from maglev.events import LbSynced
from maglev.lbtable import ip46
from maglev.vppemu.server import Emulator

from .test_lbsync import Harness, wait_for
from .test_tables import SKEWED, config_text, emulator_digest, skewed

KEY = VipKey(ipaddress.IPv4Address("198.51.100.7"), 6, 80)


def addr(i: int) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(f"10.0.0.{i}")


def vip(weights: dict[int, int], length: int = 64, flush: bool = True) -> DesiredVip:
    ases = tuple(DesiredAS(addr(i), w, flush, f"b{i}", "p") for i, w in sorted(weights.items()))
    return DesiredVip("big", KEY, Encap.GRE4, False, length, ases)


def held(d: DesiredVip) -> ObservedVip:
    """What VPP holds after a sync of ``d`` (master)."""
    o = ObservedVip(d.key, d.encap, d.src_ip_sticky, d.table_length)
    for a in d.ases:
        o.ases[a.address] = ObservedAS(a.address, d.vpp_weight(a.weight), True)
    o.table = observed_table(o, True)
    return o


def test_nothing_changes_nothing_to_say() -> None:
    d = vip({1: 100, 2: 100})
    assert vip_change("big", d, d, held(d), True) is None


def test_a_backend_down_moves_its_buckets_only_and_is_flushed() -> None:
    now, after = vip({1: 100, 2: 100, 3: 100}), vip({1: 100, 2: 100, 3: 0})
    c = vip_change("big", now, after, held(now), True)
    assert c is not None
    three = ip46(addr(3))
    lost = held(now).table.counts()[three]  # type: ignore[union-attr]
    assert lost == c.minimum  # the fewest possible: the failed AS's buckets
    assert sum(n for (src, _), n in c.moves.items() if src == three) == lost  # all of them move
    assert c.minimum <= c.moved < 2 * c.minimum  # and some others' (VPP's fill is not minimal)
    assert c.flushed == (addr(3),) and c.drained == ()
    assert c.after == desired_table(after, True)


def test_a_drain_keeps_flows_and_a_weight_change_moves_more_than_the_minimum() -> None:
    now = vip({i: 100 for i in range(1, 9)}, length=1024)
    after = vip({**{i: 100 for i in range(1, 8)}, 8: 0}, length=1024, flush=False)
    c = vip_change("big", now, after, held(now), True)
    assert c is not None and c.drained == (addr(8),) and c.flushed == ()
    half = vip({**{i: 100 for i in range(1, 8)}, 8: 50}, length=1024)
    h = vip_change("big", now, half, held(now), True)
    assert h is not None and h.minimum > 0
    # VPP's fill is not minimal: halving one of 8 moves 157 buckets where 44 must (bench/table.py)
    assert h.minimum <= h.moved < 1024 // 4


def test_recreated_created_removed() -> None:
    now = vip({1: 100, 2: 100})
    longer = vip({1: 100, 2: 100}, length=128)
    c = vip_change("big", now, longer, held(now), True)
    assert c is not None and "new-flows-table-length 64 -> 128" in c.recreated
    created = preview({}, {"big": now}, {}, True)
    assert [x.created for x in created] == [True]
    gone = preview({"big": now}, {}, {KEY: held(now)}, True, [("big", now, 30.0)])
    assert len(gone) == 1 and gone[0].after is None and gone[0].removal_in == 30.0
    assert gone[0].moved == 64  # every bucket to "no server"


def test_without_weights_every_as_is_one_entry() -> None:
    now, after = vip({1: 100, 2: 50}), vip({1: 100, 2: 100})
    o = held(now)
    o.ases = {a: ObservedAS(a, None, True) for a in o.ases}
    o.table = observed_table(o, False)
    assert vip_change("big", now, after, o, False) is None  # 26.06: a weight changes nothing


# --- against the emulator -------------------------------------------------------------


@pytest_twisted.async_yield_fixture
async def started(emu: Emulator) -> AsyncIterator[Harness]:
    h = skewed(emu, True)
    await h.start()
    yield h
    await h.stop()


def owners(emu: Emulator) -> list[str | None]:
    return emu.new_flow_table("198.51.100.7/32", 6, 80)


def only(changes: list[VipChange]) -> VipChange:
    assert [c.frontend for c in changes] == ["big"]
    return changes[0]


def check_against(emu: Emulator, before: list[str | None], c: VipChange) -> None:
    """The preview's table is the emulator's, bucket for bucket, and so are the moves."""
    after = owners(emu)
    assert c.after is not None and c.after.digest() == emulator_digest(emu)
    moved: dict[tuple[str, str], int] = {}
    for x, y in zip(before, after, strict=True):
        if x != y:
            moved[(x or "none", y or "none")] = moved.get((x or "none", y or "none"), 0) + 1
    assert {(lbtable.show_address(a), lbtable.show_address(b)): n for (a, b), n in c.moves.items()} == moved


@pytest_twisted.ensureDeferred
async def test_preview_equals_the_emulator_after_the_change(emu: Emulator, started: Harness) -> None:
    view = started.lbsync.view
    weights = emu.lb.weights
    # a backend paused
    before = owners(emu)

    def pause(m: object, states: dict[str, str]) -> None:
        states["b3"] = "paused"

    c = only(preview(*view.what_if(pause)))
    assert c.drained == (addr(4),) and c.moved >= c.minimum > 0
    await started.transition("b3", "paused")
    check_against(emu, before, c)
    # an operator's weight (master: moves; 26.06: VPP has no weights, nothing to preview)
    before = owners(emu)
    changes = preview(*view.what_if(lambda m, s: m.set_weight("big", "p", "b0", 20, False)))
    synced = wait_for(started.bus, LbSynced)
    await started.lbsync.set_weight("big", "p", "b0", 20, False)
    await synced
    if weights:
        check_against(emu, before, only(changes))
    else:
        assert changes == [] and owners(emu) == before
    # a reload: a longer table recreates the VIP
    longer = load_config(config_text(True, SKEWED, length=2048))
    c = only(preview(*view.what_if(lambda m, s: m.reconfigure(longer, 0.0))))
    assert "new-flows-table-length 1024 -> 2048" in c.recreated
    synced = wait_for(started.bus, LbSynced, lambda e: e.scope == "all")
    started.lbsync.reconfigure(longer)
    await synced
    assert c.after is not None and c.after.digest() == emulator_digest(emu)
