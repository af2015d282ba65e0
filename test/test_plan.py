"""Reconciliation plans as tables: desired + observed -> operations."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

import pytest

from maglev.config import Encap
from maglev.dataplane.desired import DesiredAS, DesiredVip, VipKey
from maglev.dataplane.plan import (
    KEEP,
    AddAS,
    AddVip,
    DelAS,
    DelVip,
    LbConf,
    ObservedAS,
    ObservedVip,
    SetConf,
    SetWeight,
    apply_to_model,
    conf_op,
    plan,
)

A = ipaddress.ip_address("192.0.2.10")
B = ipaddress.ip_address("192.0.2.11")
C = ipaddress.ip_address("192.0.2.9")
KEY = VipKey(ipaddress.ip_address("198.51.100.1"), 6, 80)


def vip(
    *ases: tuple[object, int, bool],
    encap: Encap = Encap.GRE4,
    sticky: bool = False,
    drain: bool = True,
    remove: frozenset[object] = frozenset(),
) -> DesiredVip:
    members = tuple(DesiredAS(a, w, f, str(a), "p") for a, w, f in ases)  # type: ignore[arg-type]
    return DesiredVip("web", KEY, encap, sticky, 1024, members, drain=drain, remove=remove)  # type: ignore[arg-type]


def seen(*ases: tuple[object, int | None, bool], encap: Encap = Encap.GRE4, sticky: bool | None = False) -> ObservedVip:
    o = ObservedVip(KEY, encap, sticky, 1024)
    for a, w, used in ases:
        o.ases[a] = ObservedAS(a, w, used)  # type: ignore[index,arg-type]
    return o


def kinds(ops: Sequence[object]) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for op in ops:
        if isinstance(op, AddVip):
            out.append(("add-vip",))
        elif isinstance(op, DelVip):
            out.append(("del-vip",))
        elif isinstance(op, AddAS):
            out.append(("add-as", str(op.address), op.weight))
        elif isinstance(op, DelAS):
            out.append(("del-as", str(op.address), op.flush))
        elif isinstance(op, SetWeight):
            out.append(("weight", str(op.address), op.weight, op.flush))
    return out


@pytest.mark.parametrize(
    "desired, observed, weights, applied, expected",
    [
        # nothing there: create the VIP, then every AS (standby ones at 0 too)
        (
            vip((A, 100, False), (B, 0, False)),
            None,
            True,
            {},
            [("add-vip",), ("add-as", "192.0.2.10", 100), ("add-as", "192.0.2.11", 0)],
        ),
        # without weights, an AS at 0 is not programmed
        (vip((A, 100, False), (B, 0, False)), None, False, {}, [("add-vip",), ("add-as", "192.0.2.10", 100)]),
        # in step: nothing to do
        (vip((A, 100, False)), seen((A, 100, True)), True, {}, []),
        # drain with flush
        (vip((A, 0, True)), seen((A, 100, True)), True, {}, [("weight", "192.0.2.10", 0, True)]),
        # already at 0 without flush, now flush is wanted: flush again (32)
        (vip((A, 0, True)), seen((A, 0, True)), True, {(KEY, A): (0, False)}, [("weight", "192.0.2.10", 0, True)]),
        # ... but not every time
        (vip((A, 0, True)), seen((A, 0, True)), True, {(KEY, A): (0, True)}, []),
        # removed AS (flags 0) in the way: add again
        (vip((A, 100, False)), seen((A, 100, False)), True, {}, [("add-as", "192.0.2.10", 100)]),
        # an AS nobody wants: removed with flush
        # an AS the VIP does not want: drained (weight 0, no flush), removed once drained (no flush),
        # removed at once with flush when the frontend does not drain; without weights, removed without flush
        (vip((A, 100, False)), seen((A, 100, True), (B, 100, True)), True, {}, [("weight", "192.0.2.11", 0, False)]),
        (vip((A, 100, False)), seen((A, 100, True), (B, 0, True)), True, {}, []),
        (
            vip((A, 100, False), remove=frozenset({B})),
            seen((A, 100, True), (B, 0, True)),
            True,
            {},
            [("del-as", "192.0.2.11", False)],
        ),
        (
            vip((A, 100, False), drain=False),
            seen((A, 100, True), (B, 9, True)),
            True,
            {},
            [("del-as", "192.0.2.11", True)],
        ),
        (vip((A, 100, False)), seen((A, None, True), (B, None, True)), False, {}, [("del-as", "192.0.2.11", False)]),
        # several ASes the VIP does not want: in address order, whatever order VPP listed them in
        (
            vip((A, 100, False), drain=False),
            seen((B, 9, True), (A, 100, True), (C, 9, True)),
            True,
            {},
            [("del-as", "192.0.2.9", True), ("del-as", "192.0.2.11", True)],
        ),
        # no weights: down with flush-on-down is a removal with flush; back up is an add
        (vip((A, 0, True)), seen((A, None, True)), False, {}, [("del-as", "192.0.2.10", True)]),
        (vip((A, 100, False)), seen((A, None, False)), False, {}, [("add-as", "192.0.2.10", 100)]),
        # immutable attribute differs: recreate
        (
            vip((A, 100, False), sticky=True),
            seen((A, 100, True)),
            True,
            {},
            [("del-as", "192.0.2.10", True), ("del-vip",), ("add-vip",), ("add-as", "192.0.2.10", 100)],
        ),
    ],
)
def test_plan_vip(
    desired: DesiredVip, observed: ObservedVip | None, weights: bool, applied: dict[Any, Any], expected: list[Any]
) -> None:
    obs = {KEY: observed} if observed is not None else {}
    ops, recreated = plan([desired], obs, weights, applied, full=False)
    assert kinds(ops) == expected
    assert ("web" in recreated) == (("del-vip",) in expected)


def test_full_plan_removes_strangers_vip_plan_does_not() -> None:
    stranger = VipKey(ipaddress.ip_address("203.0.113.5"), 6, 25)
    o = ObservedVip(stranger, Encap.GRE4, False, 1024, {A: ObservedAS(A, 100, True)})
    ops, _ = plan([], {stranger: o}, True, {}, full=True)
    assert kinds(ops) == [("del-as", "192.0.2.10", True), ("del-vip",)]
    assert plan([], {stranger: o}, True, {}, full=False)[0] == []


def test_explicit_flush_and_encap_change() -> None:
    ops, _ = plan([vip((A, 80, False))], {KEY: seen((A, 100, True))}, True, {}, False, {"web": [A]})
    assert kinds(ops) == [("weight", "192.0.2.10", 80, True)]
    ops, _ = plan([vip((A, 100, False), (B, 100, False))], {KEY: seen((A, 100, True), (B, 100, True))}, True, {}, False,
                  {"web": [B]})  # fmt: skip
    assert kinds(ops) == [("weight", "192.0.2.11", 100, True)]  # the same weight, flushed: only the one asked
    ops, _ = plan([vip((A, 100, False))], {KEY: seen((A, None, True))}, False, {}, False, {"web": [A]})
    assert kinds(ops) == [("del-as", "192.0.2.10", True), ("add-as", "192.0.2.10", 100)]  # no weights: out and in
    ops, recreated = plan([vip((A, 100, False), encap=Encap.GRE6)], {KEY: seen((A, 100, True))}, True, {}, False)
    assert recreated == {"web": "encap gre4 -> gre6"}


def test_conf_op() -> None:
    want = LbConf("192.0.2.254", "2001:db8::fe", 65536, 40)
    assert conf_op(want, want) is None
    assert conf_op(want, None) == SetConf(want)
    changed = conf_op(want, LbConf("192.0.2.1", "2001:db8::fe", 65536, 40))
    assert changed == SetConf(LbConf("192.0.2.254", "2001:db8::fe", KEEP, 40)), (
        "same buckets: keep (a change flushes all flows)"
    )


def test_model_follows_applied_operations() -> None:
    observed: dict[VipKey, ObservedVip] = {}
    d = vip((A, 100, False))
    for op in (AddVip(d), AddAS(KEY, A, 100), SetWeight(KEY, A, 0, True), DelAS(KEY, A, True)):
        apply_to_model(observed, op, True)
    assert observed[KEY].ases[A] == ObservedAS(A, 0, False)
    apply_to_model(observed, DelVip(KEY), True)
    assert observed == {}
