"""Desired dataplane: the effective-weight table, pool failover, frontend state, AS order."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

import pytest

from maglev.config import Encap, load_config
from maglev.dataplane.desired import (
    DISABLED,
    DOWN,
    PAUSED,
    UNKNOWN,
    UP,
    desired_dataplane,
    desired_vip,
    effective_weight,
    frontend_state,
)
from maglev.health.report import Report

CONFIG = """\
maglev:
  vpp: {lb: {ipv4-src-address: 192.0.2.254, ipv6-src-address: "2001:db8::fe"}}
  healthchecks: {h: {type: tcp, port: 80}}
  backends:
    a: {address: 192.0.2.12, healthcheck: h}
    b: {address: 192.0.2.9, healthcheck: h}
    c: {address: 192.0.2.30, healthcheck: h}
    d: {address: 10.255.0.1, healthcheck: h}
    v6: {address: "2001:db8::5", healthcheck: h}
  frontends:
    web:
      address: 198.51.100.1
      port: 80
      pools:
        - {name: primary, backends: {a: {weight: 100}, b: {weight: 50}}}
        - {name: fallback, backends: {c: {}}}
    noflush:
      address: 198.51.100.2
      port: 80
      flush-on-down: false
      pools: [{name: p, backends: {a: {}}}]
    six-to-four:
      address: "2001:db8::1"
      port: 443
      pools: [{name: p, backends: {d: {}, a: {}}}]
    sticky6:
      address: "2001:db8::2"
      protocol: any
      src-ip-sticky: true
      new-flows-table-length: 4096
      pools: [{name: p, backends: {v6: {}}}]
"""
CFG = load_config(CONFIG)


@pytest.mark.parametrize(
    "state, active, flush_on_down, expected",
    [
        (UP, True, True, (80, False)),
        (UP, False, True, (0, False)),  # standby pool (30)
        (DOWN, True, True, (0, True)),  # flush-on-down (31)
        (DOWN, True, False, (0, False)),
        (DISABLED, True, False, (0, True)),  # always flushes (32)
        (DISABLED, False, False, (0, True)),
        (UNKNOWN, True, True, (0, False)),  # never flush (33)
        (PAUSED, True, True, (0, False)),
    ],
)
def test_effective_weight_table(state: str, active: bool, flush_on_down: bool, expected: tuple[int, bool]) -> None:
    assert effective_weight(state, 80, active, flush_on_down) == expected


def weights(
    states: Mapping[str, str], overrides: dict[tuple[str, str, str], int] | None = None
) -> dict[str, tuple[int, bool]]:
    vip = desired_dataplane(CFG, states, overrides or {})["web"]
    return {a.backend: (a.weight, a.flush) for a in vip.ases}


@pytest.mark.parametrize(
    "states, expected",
    [
        ({"a": UP, "b": UP, "c": UP}, {"a": (100, False), "b": (50, False), "c": (0, False)}),
        ({"a": DOWN, "b": UP, "c": UP}, {"a": (0, True), "b": (50, False), "c": (0, False)}),
        # primary has nothing up: fail over to the fallback (29)
        ({"a": DOWN, "b": DISABLED, "c": UP}, {"a": (0, True), "b": (0, True), "c": (100, False)}),
        # and back when a primary backend returns
        ({"a": UP, "b": DISABLED, "c": UP}, {"a": (100, False), "b": (0, True), "c": (0, False)}),
        ({"a": UNKNOWN, "b": UNKNOWN, "c": UNKNOWN}, {"a": (0, False), "b": (0, False), "c": (0, False)}),
    ],
)
def test_pool_failover(states: dict[str, str], expected: dict[str, tuple[int, bool]]) -> None:
    assert weights(states) == expected


def test_primary_with_all_weights_zero_fails_over() -> None:
    states = {"a": UP, "b": UP, "c": UP}
    over = {("web", "primary", "a"): 0, ("web", "primary", "b"): 0}
    assert weights(states, over) == {"a": (0, False), "b": (0, False), "c": (100, False)}


def test_flush_on_down_false() -> None:
    vip = desired_dataplane(CFG, {"a": DOWN}, {})["noflush"]
    assert [(a.weight, a.flush) for a in vip.ases] == [(0, False)]


def test_as_order_and_encap() -> None:
    dp = desired_dataplane(CFG, {}, {})
    assert [str(a.address) for a in dp["web"].ases] == ["192.0.2.9", "192.0.2.12", "192.0.2.30"]
    assert [str(a.address) for a in dp["six-to-four"].ases] == ["10.255.0.1", "192.0.2.12"]
    assert dp["six-to-four"].encap is Encap.GRE4, "an IPv6 VIP with IPv4 backends is gre4 (34)"
    assert dp["sticky6"].encap is Encap.GRE6
    s = dp["sticky6"]
    assert (s.key.protocol, s.key.port, s.src_ip_sticky, s.table_length) == (255, 0, True, 4096)
    assert dp["web"].key.address == ipaddress.ip_address("198.51.100.1") and dp["web"].key.protocol == 6


def test_each_config_has_its_own_as_order() -> None:
    """The members' order is worked out once for a config (desired._layout): a reload that
    moves a backend gets the new order, and the old config keeps its own."""
    moved = load_config(CONFIG.replace("a: {address: 192.0.2.12", "a: {address: 192.0.2.40"))
    for _ in range(2):  # the second time from what was worked out
        assert [a.backend for a in desired_dataplane(CFG, {}, {})["web"].ases] == ["b", "a", "c"]
        assert [a.backend for a in desired_dataplane(moved, {}, {})["web"].ases] == ["b", "c", "a"]
        ases = desired_dataplane(moved, {"b": UP, "c": UP}, {})["web"].ases
        want = [("b", "primary", 50), ("c", "fallback", 0), ("a", "primary", 0)]
        assert [(a.backend, a.pool, a.weight) for a in ases] == want
    fe = CFG.frontends["six-to-four"]
    assert desired_vip(fe, moved, {}, {}).encap is Encap.GRE4, "a frontend of another config: worked out afresh"
    assert [str(a.address) for a in desired_vip(fe, moved, {}, {}).ases] == ["10.255.0.1", "192.0.2.40"]


# One call after another on the same config: (why, states, overrides, keyword arguments),
# and the (backend, weight, flush) of each AS in VPP's order (b, a, c).
ALL_UP = {"a": UP, "b": UP, "c": UP}
SERVING = [("b", 50, False), ("a", 100, False), ("c", 0, False)]
KeptVipCall = tuple[str, Mapping[str, str], dict[tuple[str, str, str], int], dict[str, object]]
KEPT_VIP_CALLS: list[tuple[KeptVipCall, list[tuple[str, int, bool]]]] = [
    (("all up", ALL_UP, {}, {}), SERVING),
    (("the same states again", dict(ALL_UP), {}, {}), SERVING),
    (("a state moved", {**ALL_UP, "b": DOWN}, {}, {}), [("b", 0, True), ("a", 100, False), ("c", 0, False)]),
    (("and back", ALL_UP, {}, {}), SERVING),
    (("an override", ALL_UP, {("web", "primary", "a"): 0}, {}), [("b", 50, False), ("a", 0, False), ("c", 0, False)]),
    (
        ("a report", ALL_UP, {}, {"reports": {"a": Report("maint")}}),
        [("b", 50, False), ("a", 0, True), ("c", 0, False)],
    ),
    (("a hold", ALL_UP, {}, {"held": {"a"}}), [("b", 50, False), ("a", 0, False), ("c", 0, False)]),
    (("a ramp", ALL_UP, {}, {"ramping": {"a": 1}}), [("b", 50, False), ("a", 10, False), ("c", 0, False)]),
    (("failed over", {"a": DOWN, "b": DOWN, "c": UP}, {}, {}), [("b", 0, True), ("a", 0, True), ("c", 100, False)]),
    (
        ("other scales", {"c": UP}, {}, {"scales": {("web", 1): 50}}),
        [("b", 0, False), ("a", 0, False), ("c", 100, False)],
    ),
    (("unknown", {}, {}, {}), [("b", 0, False), ("a", 0, False), ("c", 0, False)]),
]


def test_a_vip_kept_from_the_last_call_is_the_one_its_inputs_give() -> None:
    """desired_vip keeps the VIP it last worked out where states alone decide: each call
    gives what the same inputs give on a config never asked before."""
    text = CONFIG.replace("      address: 198.51.100.1\n", "      address: 198.51.100.1\n      slow-start: 10s\n")
    cfg = load_config(text)
    fe = cfg.frontends["web"]
    for (why, states, overrides, kw), want in KEPT_VIP_CALLS:
        vip = desired_vip(fe, cfg, states, overrides, **kw)  # type: ignore[arg-type]
        alone = load_config(text)
        fresh = desired_vip(alone.frontends["web"], alone, states, overrides, **kw)  # type: ignore[arg-type]
        assert [(a.backend, a.weight, a.flush) for a in vip.ases] == want, why
        assert vip == fresh, why
    scaled = desired_vip(fe, cfg, {"c": UP}, {}, scales={("web", 1): 50})
    assert scaled.weight_scale == 50 and desired_vip(fe, cfg, {"c": UP}, {}).weight_scale == 100
    kept = desired_vip(fe, cfg, {"a": UP}, {})
    assert desired_vip(fe, cfg, {"a": UP}, {}) is kept, "states alone decide: the VIP is the one kept"


@pytest.mark.parametrize(
    "states, expected",
    [
        ({"a": UP}, UP),
        ({"a": UNKNOWN, "b": UNKNOWN, "c": UNKNOWN}, UNKNOWN),
        ({"a": DOWN}, DOWN),
        ({"a": UP, "b": DISABLED}, UP),
        ({"c": UP, "a": DOWN, "b": DOWN}, UP),
        ({"a": PAUSED}, DOWN),  # 28: nothing with weight is not up
    ],
)
def test_frontend_state(states: dict[str, str], expected: str) -> None:
    vip = desired_dataplane(CFG, states, {})["web"]
    assert frontend_state(vip, states) == expected
