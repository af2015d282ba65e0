"""What backends say of themselves: the agent protocol's words, how sources combine, what
the dataplane then gives each pool member (plain tables)."""

from __future__ import annotations

import ipaddress

import pytest

from maglev.config import load_config
from maglev.dataplane.desired import desired_vip
from maglev.dataplane.reports import Reports
from maglev.health.report import NEUTRAL, AgentWordError, Report, combined, parse_agent, scaled


@pytest.mark.parametrize(
    ("line", "report"),
    [
        ("up\n", Report()),
        ("ready", Report()),
        ("drain", Report("drain")),
        ("maint\r\n", Report("maint")),
        ("down", Report("down")),
        ("fail", Report("down")),
        ("stopped", Report("down")),
        ("75%", Report(percent=75)),
        ("up 50%", Report(percent=50)),
        ("UP,30%,maxconn:10", Report(percent=30)),  # HAProxy's separators; what we do not use is ignored
        ("drain 40%", Report("drain", 40)),
        ("250%", Report(percent=100)),
        ("0%", Report(percent=0)),
    ],
)
def test_agent_words(line: str, report: Report) -> None:
    assert parse_agent(line) == report


@pytest.mark.parametrize("line", ["", "   ", "hello", "maxconn:10", "%"])
def test_agent_lines_without_a_word_we_use(line: str) -> None:
    with pytest.raises(AgentWordError, match="no state or weight"):
        parse_agent(line)


@pytest.mark.parametrize(
    ("reports", "result"),
    [
        ({}, NEUTRAL),
        ({"agent": Report("drain")}, Report("drain")),
        ({"agent": Report(percent=50), "exec": Report(percent=80)}, Report(percent=50)),
        ({"agent": Report("drain"), "exec": Report("maint")}, Report("maint")),
        ({"agent": Report("down"), "exec": Report("drain", 20)}, Report("down", 20)),
    ],
)
def test_sources_combine_to_the_strictest(reports: dict[str, Report], result: Report) -> None:
    assert combined(reports) == result


@pytest.mark.parametrize(("weight", "percent", "out"), [(100, 50, 50), (3, 10, 1), (0, 50, 0), (80, 0, 0), (7, 100, 7)])
def test_scaled(weight: int, percent: int, out: int) -> None:
    assert scaled(weight, percent) == out


def test_reports_remember_by_source_and_say_what_changed() -> None:
    r = Reports()
    assert r.set("web0", "agent", Report("drain")) and r.effective == {"web0": Report("drain")}
    assert not r.set("web0", "agent", Report("drain")), "the same word again changes nothing"
    assert r.set("web0", "exec", Report(percent=50)) and r.effective["web0"] == Report("drain", 50)
    assert r.of("web0") == (Report("drain", 50), ("agent", "exec"))
    assert r.set("web0", "agent", NEUTRAL) and r.effective["web0"] == Report(percent=50)
    assert r.set("web0", "exec", Report(percent=100)) and r.effective == {}, "ready and 100% is nothing to follow"


CONFIG = """
maglev:
  vpp: {lb: {ipv4-src-address: 192.0.2.254}}
  healthchecks: {h: {type: tcp, port: 80}}
  backends:
    a: {address: 192.0.2.1, healthcheck: h, agent: {port: 9777}}
    b: {address: 192.0.2.2, healthcheck: h}
    c: {address: 192.0.2.3, healthcheck: h}
  frontends:
    web:
      address: 198.51.100.1
      port: 80
      fit-weights: false
      pools:
        - {name: p, backends: {a: {weight: 80}, b: {}}}
        - {name: spare, backends: {c: {}}}
"""
A, B, C = (ipaddress.ip_address(f"192.0.2.{i}") for i in (1, 2, 3))


@pytest.mark.parametrize(
    ("states", "report", "overrides", "expected"),
    [
        # the agent's word on an up backend
        ({}, Report(percent=50), {}, {A: (40, False), B: (100, False), C: (0, False)}),
        ({}, Report("drain"), {}, {A: (0, False), B: (100, False), C: (0, False)}),
        ({}, Report("maint"), {}, {A: (0, True), B: (100, False), C: (0, False)}),
        ({}, Report("down"), {}, {A: (0, True), B: (100, False), C: (0, False)}),  # flush-on-down: true
        # an operator's weight and pause win over it
        ({}, Report(percent=50), {("web", "p", "a"): 60}, {A: (60, False), B: (100, False), C: (0, False)}),
        ({"a": "paused"}, Report("maint"), {}, {A: (0, False), B: (100, False), C: (0, False)}),
        # a drained pool fails over as a down one does
        ({"b": "down"}, Report("drain"), {}, {A: (0, False), B: (0, True), C: (100, False)}),
    ],
)
def test_the_dataplane_follows_the_backends_word(
    states: dict[str, str], report: Report, overrides: dict[tuple[str, str, str], int],
    expected: dict[ipaddress.IPv4Address, tuple[int, bool]],
) -> None:  # fmt: skip
    cfg = load_config(CONFIG)
    now = {"a": "up", "b": "up", "c": "up", **states}
    vip = desired_vip(cfg.frontends["web"], cfg, now, overrides, reports={"a": report})
    assert {a.address: (a.weight, a.flush) for a in vip.ases} == expected


def test_a_reload_takes_back_what_gone_agents_said() -> None:
    r = Reports()
    r.set("a", "agent", Report("drain"))
    r.set("b", "agent", Report("drain"))
    r.set("gone", "agent", Report("maint"))
    r.reconfigured(load_config(CONFIG))
    assert r.effective == {"a": Report("drain")}, "b has no agent in the config, gone is not in it"


def test_the_api_names_the_pool_the_dataplane_fails_over_to_for_the_backends_word() -> None:
    from types import MappingProxyType

    from twisted.internet import reactor

    from maglev.api.convert import frontend_info
    from maglev.bus import EventBus
    from maglev.dataplane.service import LbSync

    cfg = load_config(CONFIG)
    states = {"a": "up", "b": "down", "c": "up"}
    sync = LbSync(cfg, EventBus(), reactor, MappingProxyType(states), api_addr="", stats_addr="", api_dir=None)
    sync.model.reports.set("a", "agent", Report("drain"))  # pool p: a drains, b is down
    desired = sync.model.desired()["web"]
    assert {a.address: a.weight for a in desired.ases} == {A: 0, B: 0, C: 100}
    info = frontend_info(cfg.frontends["web"], desired, sync.view, states)
    assert [(p.name, p.active) for p in info.pools] == [("p", False), ("spare", True)]
