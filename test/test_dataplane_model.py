"""The dataplane's pure pieces: the VPP connection's state table and DataplaneModel."""

from __future__ import annotations

import ipaddress

import pytest

from maglev.config import load_config
from maglev.dataplane.connection import TRANSITIONS, ConnectionInput, ConnectionMachine, ConnectionState, Output
from maglev.dataplane.model import DataplaneModel, lb_conf
from maglev.states import FrontendState

S, In, Out = ConnectionState, ConnectionInput, Output

CONFIG = """\
maglev:
  vpp: {lb: {ipv4-src-address: 192.0.2.254, ipv6-src-address: "2001:db8::fe", startup-min-delay: 2s,
             startup-max-delay: 10s, sticky-buckets-per-core: 2048, flow-timeout: 30s}}
  healthchecks: {h: {type: tcp, port: 80}}
  backends:
    a: {address: 192.0.2.1, healthcheck: h}
    b: {address: 192.0.2.2, healthcheck: h}
    c: {address: 192.0.2.3, healthcheck: h}
  frontends:
    web:
      address: 198.51.100.1
      port: 80
      pools: [{name: p, backends: {a: {}, b: {}}}]
    dns:
      address: 198.51.100.1
      protocol: udp
      port: 53
      pools: [{name: p, backends: {c: {}}}]
"""


# --- the connection's table ---------------------------------------------------------------
@pytest.mark.parametrize(
    "inputs, state, outputs",
    [
        ([In.START], S.CONNECTING, [Out.CONNECT]),
        ([In.START, In.CONNECTED], S.CONNECTED, [Out.ANNOUNCE_CONNECTED]),
        ([In.START, In.FAILED], S.BACKING_OFF, [Out.REPORT_FAILURE, Out.SCHEDULE_RETRY]),
        ([In.START, In.FAILED, In.RETRY], S.CONNECTING, [Out.CONNECT]),
        ([In.START, In.CONNECTED, In.LOST], S.LOST, [Out.ANNOUNCE_LOST, Out.CLOSE]),
        ([In.START, In.CONNECTED, In.LOST, In.CLOSED], S.BACKING_OFF, [Out.SCHEDULE_RETRY]),
        ([In.START, In.CONNECTED, In.LOST, In.CLOSED, In.RETRY], S.CONNECTING, [Out.CONNECT]),
        # a second report of the same loss, and losses while not connected, change nothing
        ([In.START, In.CONNECTED, In.LOST, In.LOST], S.LOST, []),
        ([In.START, In.LOST], S.CONNECTING, []),
        ([In.START, In.FAILED, In.LOST], S.BACKING_OFF, []),
        # stopping from anywhere; a connect result arriving after the stop is ignored
        ([In.START, In.STOP], S.DISCONNECTED, []),
        ([In.START, In.STOP, In.CONNECTED], S.DISCONNECTED, []),
        ([In.START, In.CONNECTED, In.STOP], S.DISCONNECTED, []),
        ([In.START, In.FAILED, In.STOP], S.DISCONNECTED, [Out.CANCEL_RETRY]),
        ([In.START, In.CONNECTED, In.LOST, In.STOP, In.CLOSED], S.DISCONNECTED, []),
        ([In.STOP], S.DISCONNECTED, []),
    ],
)
def test_connection_table(inputs: list[ConnectionInput], state: ConnectionState, outputs: list[Output]) -> None:
    machine = ConnectionMachine()
    last: tuple[Output, ...] = ()
    for what in inputs:
        last = machine.feed(what)
    assert machine.state is state
    assert list(last) == outputs
    assert machine.connected == (state is S.CONNECTED)


def test_every_state_can_be_left_and_stopped() -> None:
    for state in ConnectionState:
        exits = [k for k in TRANSITIONS if k[0] is state]
        assert exits, f"{state} is a dead end"
        if state is not S.DISCONNECTED:
            assert (state, In.STOP) in TRANSITIONS, f"{state} cannot be stopped"


# --- DataplaneModel --------------------------------------------------------------------
def model(states: dict[str, str] | None = None) -> tuple[DataplaneModel, dict[str, str]]:
    live = dict(states or {})
    return DataplaneModel(load_config(CONFIG), live), live


@pytest.mark.parametrize(
    "args, error",
    [
        (("nope", "p", "a", 10, False), "no such frontend 'nope'"),
        (("web", "q", "a", 10, False), "frontend 'web' has no pool 'q'"),
        (("web", "p", "c", 10, False), "pool 'p' of frontend 'web' has no backend 'c'"),
        (("web", "p", "a", 101, False), "weight must be 0..100, got 101"),
        (("web", "p", "a", -1, False), "weight must be 0..100, got -1"),
    ],
)
def test_set_weight_refusals_change_nothing(args: tuple[str, str, str, int, bool], error: str) -> None:
    m, _ = model({"a": "up", "b": "up"})
    with pytest.raises((KeyError, ValueError)) as e:
        m.set_weight(*args)
    assert error in str(e.value)
    assert dict(m.overrides) == {}


def test_set_weight_keeps_the_override_and_asks_for_a_flush_only_when_told() -> None:
    m, _ = model({"a": "up", "b": "up"})
    assert m.set_weight("web", "p", "a", 20, False) is None
    assert m.set_weight("web", "p", "b", 0, True) == {"web": {ipaddress.ip_address("192.0.2.2")}}
    assert {a.backend: a.weight for a in m.desired(["web"])["web"].ases} == {"a": 20, "b": 0}
    with pytest.raises(TypeError):
        m.overrides[("web", "p", "a")] = 5  # type: ignore[index]


def test_states_come_from_the_live_mapping_and_frontend_changes_are_reported_once() -> None:
    m, live = model()
    assert m.update_frontend_states() == [("web", None, "unknown"), ("dns", None, "unknown")]
    assert m.update_frontend_states() == []
    live["a"] = "up"
    assert m.update_frontend_states(["web"]) == [("web", FrontendState.UNKNOWN, FrontendState.UP)]
    live["a"] = "down"
    live["b"] = "down"
    assert m.update_frontend_states() == [("web", FrontendState.UP, FrontendState.DOWN)]


def test_reconfigure_drops_what_belongs_to_frontends_that_are_gone() -> None:
    m, _ = model({"a": "up", "b": "up", "c": "up"})
    m.update_frontend_states()
    m.set_weight("dns", "p", "c", 7, False)
    m.set_weight("web", "p", "a", 9, False)
    smaller = CONFIG[: CONFIG.index("    dns:")]
    m.reconfigure(load_config(smaller), 0.0)
    assert dict(m.overrides) == {("web", "p", "a"): 9}
    assert set(m.frontend_states) == {"web"}


@pytest.mark.parametrize(
    "states, at, holding, released",
    [
        ({}, 1.0, True, []),  # inside startup-min-delay: nothing
        ({"a": "up", "b": "up", "c": "up"}, 1.9, True, []),
        ({"a": "up", "b": "down"}, 2.0, False, ["web"]),  # every backend known: released
        ({"a": "up"}, 5.0, False, []),  # b still unknown
        ({"a": "up", "b": "up", "c": "down"}, 3.0, False, ["web", "dns"]),
    ],
)
def test_warmup_releases_a_vip_once_its_backends_are_known(
    states: dict[str, str], at: float, holding: bool, released: list[str]
) -> None:
    m, _ = model(states)
    m.start_warmup(100.0)
    assert not m.warm
    assert m.holding(100.0 + at) is holding
    assert m.release_ready(100.0 + at) == released
    assert m.release_ready(100.0 + at) == [], "released once"
    assert m.allowed(["web", "dns"]) == released


def test_warmup_follows_a_reload_of_the_unreleased_vips() -> None:
    m, live = model({"a": "up", "b": "up"})
    m.start_warmup(0.0)
    assert m.release_ready(3.0) == ["web"]  # dns waits for c
    # A reload in the warm-up: dns now also needs d, and a new VIP needs a.
    more = CONFIG.replace(
        "    c: {address: 192.0.2.3, healthcheck: h}\n",
        "    c: {address: 192.0.2.3, healthcheck: h}\n    d: {address: 192.0.2.4, healthcheck: h}\n",
    )
    more = more.replace("backends: {c: {}}}]", "backends: {c: {}, d: {}}}]") + (
        "    ntp:\n      address: 198.51.100.2\n      protocol: udp\n      port: 123\n"
        "      pools: [{name: p, backends: {a: {}}}]\n"
    )  # fmt: skip
    m.reconfigure(load_config(more), 3.0)
    live["c"] = "down"
    assert m.release_ready(4.0) == ["ntp"]  # web released already; dns waits for d now
    live["d"] = "up"
    assert m.release_ready(5.0) == ["dns"]
    assert m.release_ready(6.0) == [] and m.allowed(["web", "dns", "ntp"]) == ["web", "dns", "ntp"]


def test_warmup_end_releases_everything_and_a_full_job_then_removes_strangers() -> None:
    m, _ = model({"a": "up", "b": "up"})
    m.start_warmup(0.0)
    m.release_ready(3.0)
    partial = m.job(True, (), {}, {})
    assert [d.frontend for d in partial.desired] == ["web"] and not partial.full, "warm-up: released VIPs only"
    assert m.end_warmup() and not m.end_warmup()
    job = m.job(True, (), {}, {})
    assert [d.frontend for d in job.desired] == ["web", "dns"], "config order"
    assert job.full and job.reread and job.scope == "all"
    assert job.conf == lb_conf(m.config)
    assert (job.conf.ip4, job.conf.buckets, job.conf.timeout) == ("192.0.2.254", 2048, 30)
    assert [(d.key.protocol, d.key.port) for d in job.desired] == [(6, 80), (17, 53)], "UDP beside TCP"


def test_a_vip_job_reuses_fresh_vips_and_computes_the_rest() -> None:
    m, live = model({"a": "up", "b": "up", "c": "up"})
    m.end_warmup()
    fresh = m.desired(["web"])
    live["a"] = "down"  # what changed after `fresh` was computed is not seen for web
    job = m.job(False, ["web", "dns"], {"web": set()}, fresh)
    assert job.scope == "vip" and not job.full and not job.reread
    web = next(d for d in job.desired if d.frontend == "web")
    assert web is fresh["web"]
    assert [d.frontend for d in job.desired] == ["dns", "web"], "in a fixed order"
    gone = m.job(False, ["nope", "web"], {}, {})
    assert [d.frontend for d in gone.desired] == ["web"], "a frontend a reload removed is skipped"
    assert job.flush == {"web": set()}


def test_a_full_job_reuses_fresh_vips_only_when_they_hold_every_frontend() -> None:
    m, live = model({"a": "up", "b": "up", "c": "up"})
    m.end_warmup()
    reloaded = m.reconfigure(load_config(CONFIG.replace("b: {}}", "b: {weight: 40}}")), 0.0)
    assert reloaded.desired == m.desired(), "the reload's VIPs are the moment's"
    assert {a.backend: a.weight for a in reloaded.desired["web"].ases} == {"a": 100, "b": 40}
    live["a"] = "down"  # after the reload: not seen by a job that reuses its VIPs
    reused = m.job(True, [], {}, reloaded.desired)
    assert {d.frontend: d for d in reused.desired} == reloaded.desired
    partial = m.job(True, [], {}, {"web": reloaded.desired["web"]})
    web = next(d for d in partial.desired if d.frontend == "web")
    assert web is not reloaded.desired["web"], "a part of them: every VIP computed again"
    assert {a.backend: a.weight for a in web.ases}["a"] == 0
