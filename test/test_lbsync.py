"""LbSync against the VPP emulator: the real vpp_papi client, both flavours, real reactor."""

from __future__ import annotations

import ipaddress
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred

import maglev.vppapi as vppapi
from maglev.bus import EventBus
from maglev.config import Config, load_config
from maglev.dataplane.desired import desired_dataplane, desired_vip
from maglev.dataplane.service import LbSync, NotConnected
from maglev.events import BackendReported, BackendTransition, Event, FrontendTransition, LbSynced, VppConnected
from maglev.health.report import Report
from maglev.vppemu.lb import show_address
from maglev.vppemu.process import start_emulator
from maglev.vppemu.server import Emulator

from .emu import API_DIR

pytestmark = pytest.mark.slow

CONFIG = """\
maglev:
  vpp:
    lb: {ipv4-src-address: 192.0.2.254, ipv6-src-address: "2001:db8::fe", sync-interval: 1h,
         startup-min-delay: 0s, startup-max-delay: 0s}
  healthchecks: {h: {type: tcp, port: 80}}
  backends:
    a: {address: 192.0.2.12, healthcheck: h}
    b: {address: 192.0.2.9, healthcheck: h}
    c: {address: 192.0.2.30, healthcheck: h}
    v6a: {address: "2001:db8::12", healthcheck: h}
    v6b: {address: "2001:db8::5", healthcheck: h}
  frontends:
    web:
      address: 198.51.100.1
      port: 80
      fit-weights: false  # weights as configured: these tests are about the sync (fitting: test_tables.py)
      pools:
        - {name: primary, backends: {a: {weight: 100}, b: {weight: 50}}}
        - {name: fallback, backends: {c: {}}}
    web6:
      address: "2001:db8::1"
      port: 443
      pools: [{name: p, backends: {v6a: {}, v6b: {}}}]
"""


def reactor() -> Any:
    from twisted.internet import reactor as r

    return r


def wait_for(bus: EventBus, kind: type[Event], pred: Any = lambda e: True, timeout: float = 10.0) -> Deferred[Any]:
    d: Deferred[Any] = Deferred()

    def seen(e: Any) -> None:
        if not d.called and pred(e):
            sub.cancel()
            d.callback(e)

    sub = bus.subscribe(kind, seen)
    d.addTimeout(timeout, reactor())
    return d


class Harness:
    def __init__(
        self, api: str, stats: str, config: Config, states: dict[str, str], api_dir: str | None = str(API_DIR)
    ) -> None:
        self.bus = EventBus()
        self.states = states
        self.config = config
        self.lbsync = LbSync(config, self.bus, reactor(), self.states, api, stats, api_dir)

    async def start(self) -> None:
        connected = wait_for(self.bus, VppConnected)
        first = wait_for(self.bus, LbSynced, lambda e: e.scope == "all")
        self.lbsync.startService()
        await connected
        await first

    async def stop(self) -> None:
        d = self.lbsync.stopService()
        if d is not None:
            await d

    async def transition(self, backend: str, new: str) -> LbSynced:
        old = self.states.get(backend, "unknown")
        self.states[backend] = new
        synced = wait_for(self.bus, LbSynced, lambda e: e.scope == "vip")
        self.bus.publish(BackendTransition(0.0, backend, old, new, "L4OK", "", 0, new != "disabled"))
        result: LbSynced = await synced
        return result


def programmed(emu: Emulator) -> dict[str, dict[str, tuple[int, bool]]]:
    """VIP -> AS -> (weight, in use), straight from the emulator's model."""
    with emu.lock:
        out: dict[str, dict[str, tuple[int, bool]]] = {}
        for vip in emu.lb.live_vips():
            if vip.deleted:
                continue
            ases: dict[str, tuple[int, bool]] = {
                show_address(a.address): (a.weight, a.used) for a in emu.lb.ases_of(vip) if a.used
            }
            out[vip.describe()] = ases
        return out


def mutations(emu: Emulator, since: int = 0) -> list[tuple[str, Any]]:
    with emu.lock:
        reqs = list(emu.requests)[since:]
    return [(n, r) for n, r in reqs if n.startswith("lb_") and not n.endswith("dump") and n != "lb_conf_get"]


@pytest_twisted.async_yield_fixture
async def harness(emu: Emulator) -> AsyncIterator[Harness]:
    h = Harness(
        emu.api_socket,
        str(emu.stats_socket),
        load_config(CONFIG),
        {"a": "up", "b": "up", "c": "up", "v6a": "up", "v6b": "up"},
    )
    await h.start()
    yield h
    await h.stop()


WEB = "198.51.100.1/32 protocol 6 port 80"
WEB6 = "2001:db8::1/128 protocol 6 port 443"


@pytest_twisted.ensureDeferred
async def test_full_sync_from_empty(emu: Emulator, harness: Harness) -> None:
    got = programmed(emu)
    if emu.lb.weights:
        assert got[WEB] == {"192.0.2.9": (50, True), "192.0.2.12": (100, True), "192.0.2.30": (0, True)}
        with emu.lock:
            assert emu.lb.conf.flow_timeout == 40 and emu.lb.conf.sticky_buckets_per_core == 65536
    else:
        assert got[WEB] == {"192.0.2.9": (100, True), "192.0.2.12": (100, True)}, "no weights: standby ASes absent"
    assert set(got[WEB6]) == {"2001:db8::5", "2001:db8::12"}
    adds = [r for n, r in mutations(emu) if n.startswith("lb_add_del_as") and not r.is_del]
    order = [(int(r.as_address.af), bytes(r.as_address.un.ip6)) for r in adds]
    assert order == sorted(order), "ASes are added IPv4 before IPv6, numerically ascending (40)"
    vips = [r for n, r in mutations(emu) if n == "lb_add_del_vip_v2"]
    assert all(r.new_flows_table_length == 1024 for r in vips), "always a table length (38)"
    if emu.lb.weights:
        assert all(r.pfx.len <= 32 for r in vips if int(r.pfx.address.af) == 0), "never a +96 length on master"


@pytest_twisted.ensureDeferred
async def test_backend_down_drains_and_traffic_avoids_it(emu: Emulator, harness: Harness) -> None:
    before = len(emu.requests)
    await harness.transition("a", "down")
    got = programmed(emu)
    assert "192.0.2.12" not in {k for k, (w, _) in got[WEB].items() if w > 0}
    muts = mutations(emu, before)
    if emu.lb.weights:
        assert [(n, r.weight, r.is_flush) for n, r in muts] == [("lb_as_set_weight", 0, True)], "flush-on-down (31)"
    else:
        assert [(n, r.is_del, r.is_flush) for n, r in muts] == [("lb_add_del_as", True, True)]
    delivered = emu.traffic("198.51.100.1/32", flows=300, packets=2, protocol="tcp", port=80, seed=9)
    assert "192.0.2.12" not in delivered and "192.0.2.9" in delivered
    await harness.transition("a", "up")
    assert programmed(emu)[WEB]["192.0.2.12"][0] == 100


@pytest_twisted.ensureDeferred
async def test_a_transition_computes_its_vip_once_on_the_way_to_vpp(
    emu: Emulator, harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The frontend's state and the sync it starts share one computation of the VIP."""
    from maglev.dataplane import model

    computed: list[str] = []

    def counting(fe: Any, *args: Any) -> Any:
        computed.append(fe.name)
        return desired_vip(fe, *args)

    monkeypatch.setattr(model, "desired_vip", counting)
    result = await harness.transition("a", "down")
    assert result.changes == 1
    assert sorted(computed) == sorted(harness.config.frontends_using("a"))
    assert "192.0.2.12" not in {k for k, (w, _) in programmed(emu)[WEB].items() if w > 0}


@pytest_twisted.ensureDeferred
async def test_a_connection_works_out_every_vip_once_for_its_checks_states_and_first_sync(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the connected VPP can hold, the frontends' states and the full sync that follows
    read one computation of every VIP (each is a pass over every backend)."""
    from maglev.dataplane import model

    passes: list[int] = []

    def counting(cfg: Config, *args: Any) -> Any:
        passes.append(len(cfg.frontends))
        return desired_dataplane(cfg, *args)

    monkeypatch.setattr(model, "desired_dataplane", counting)
    h = Harness(
        emu.api_socket, str(emu.stats_socket), load_config(CONFIG), {b: "up" for b in ("a", "b", "c", "v6a", "v6b")}
    )
    await h.start()
    try:
        # the first: the frontends' states at the start, before any VPP
        assert passes == [len(h.config.frontends)] * 2
        assert "192.0.2.12" in programmed(emu)[WEB], "the first sync wrote what was worked out"
    finally:
        await h.stop()


@pytest_twisted.ensureDeferred
async def test_a_burst_over_more_vips_than_a_turn_takes_syncs_them_all_in_the_next_turns(
    emu: Emulator, harness: Harness
) -> None:
    harness.lbsync._settling.per_turn = 1  # one VIP a turn: the burst below spans two turns
    synced = [
        wait_for(harness.bus, LbSynced, lambda e, n=name: e.scope == "vip" and n in e.frontends)
        for name in ("web", "web6")
    ]
    for backend in ("a", "v6a"):  # in one turn, each in one VIP
        harness.states[backend] = "down"
        harness.bus.publish(BackendTransition(0.0, backend, "up", "down", "L4CON", "", 0, True))
    for d in synced:
        await d
    got = programmed(emu)
    assert "192.0.2.12" not in {k for k, (w, _) in got[WEB].items() if w > 0}
    assert "2001:db8::12" not in {k for k, (w, _) in got[WEB6].items() if w > 0}


@pytest_twisted.ensureDeferred
async def test_pool_failover_and_back(emu: Emulator, harness: Harness) -> None:
    await harness.transition("a", "down")
    await harness.transition("b", "disabled")
    got = programmed(emu)[WEB]
    assert got["192.0.2.30"][0] == 100, "the fallback pool takes over (29)"
    assert all(w == 0 for addr, (w, _) in got.items() if addr != "192.0.2.30")
    await harness.transition("b", "up")
    got = programmed(emu)[WEB]
    assert got["192.0.2.9"][0] == (50 if emu.lb.weights else 100)
    assert got.get("192.0.2.30", (0, True))[0] == 0, "back to the primary; the fallback is standby (30)"


@pytest_twisted.ensureDeferred
async def test_unknown_and_paused_never_flush(emu: Emulator, harness: Harness) -> None:
    before = len(emu.requests)
    await harness.transition("a", "paused")
    flushes = [r for n, r in mutations(emu, before) if getattr(r, "is_flush", False)]
    assert flushes == []


@pytest.mark.parametrize("flavour", ["master"])
@pytest_twisted.ensureDeferred
async def test_disabled_after_drained_by_failover_still_flushes(emu: Emulator, harness: Harness) -> None:
    # c is in the standby pool: weight 0 without flush (failover, not failure)
    before = len(emu.requests)
    await harness.transition("c", "disabled")  # already at 0, but disabled always flushes (32)
    assert [(r.weight, r.is_flush) for n, r in mutations(emu, before)] == [(0, True)]


@pytest.mark.parametrize("flavour", ["master"])
@pytest_twisted.ensureDeferred
async def test_set_weight_applies_at_once_with_explicit_flush(emu: Emulator, harness: Harness) -> None:
    before = len(emu.requests)
    result = await harness.lbsync.set_weight("web", "primary", "a", 20, flush=True)
    assert not result.errors
    assert [(n, r.weight, r.is_flush) for n, r in mutations(emu, before)] == [("lb_as_set_weight", 20, True)]
    assert programmed(emu)[WEB]["192.0.2.12"][0] == 20
    with pytest.raises(KeyError, match="no pool"):
        harness.lbsync.set_weight("web", "nope", "a", 20, flush=False)
    with pytest.raises(ValueError, match="0..100"):
        harness.lbsync.set_weight("web", "primary", "a", 101, flush=False)


@pytest_twisted.ensureDeferred
async def test_full_sync_repairs_manual_changes_and_removes_strangers(emu: Emulator, harness: Harness) -> None:
    from vpp_papi import VPPApiClient

    c = VPPApiClient(apidir=str(API_DIR), server_address=emu.api_socket)
    c.connect("operator")
    try:
        pfx = "198.51.100.1/32" if emu.lb.weights else {"address": "198.51.100.1", "len": 128}
        stranger = "203.0.113.5/32" if emu.lb.weights else {"address": "203.0.113.5", "len": 128}
        args = {"pfx": pfx, "protocol": 6, "port": 80}
        as_call = c.api.lb_add_del_as_v2 if emu.lb.weights else c.api.lb_add_del_as
        assert as_call(**args, as_address="192.0.2.9", is_del=True).retval == 0  # a manual vppctl change
        assert c.api.lb_add_del_vip_v2(pfx=stranger, protocol=6, port=25, encap=0).retval == 0
        assert as_call(pfx=stranger, protocol=6, port=25, as_address="192.0.2.77").retval == 0
    finally:
        c.disconnect()
    result = await harness.lbsync.request_sync(full=True)
    assert not result.errors, result.errors
    got = programmed(emu)
    assert "192.0.2.9" in got[WEB], "repaired (42)"
    assert not any(k.startswith("203.0.113.5") for k in got), "VIPs not in the config are removed (41)"


@pytest_twisted.ensureDeferred
async def test_vip_sync_never_removes_vips(emu: Emulator, harness: Harness) -> None:
    smaller = load_config(
        CONFIG.replace(
            '    web6:\n      address: "2001:db8::1"\n      port: 443\n'
            "      pools: [{name: p, backends: {v6a: {}, v6b: {}}}]\n",
            "",
        )
    )
    harness.lbsync.model.reconfigure(smaller, reactor().seconds())  # as if reloaded, without the reload's full sync
    result = await harness.lbsync.request_sync(frontends=["web"])
    assert not result.errors
    assert WEB6 in programmed(emu)
    harness.lbsync.reconfigure(smaller)  # the reload path: a full sync
    await wait_for(harness.bus, LbSynced, lambda e: e.scope == "all")
    # the removed frontend drains: its VIP stays, no AS takes new flows, none is flushed
    expected = {"2001:db8::5": (0, True), "2001:db8::12": (0, True)} if emu.lb.weights else {}
    assert programmed(emu)[WEB6] == expected
    assert [str(d.vip.key.address) for d in harness.lbsync.model.drains.vips.values()] == ["2001:db8::1"]


@pytest.mark.parametrize("flavour", ["master"])
@pytest_twisted.ensureDeferred
async def test_flipping_src_ip_sticky_or_family_recreates_the_vip(emu: Emulator, harness: Harness) -> None:
    sticky = load_config(
        CONFIG.replace("      address: 198.51.100.1\n", "      address: 198.51.100.1\n      src-ip-sticky: true\n")
    )
    harness.lbsync.reconfigure(sticky)
    await wait_for(harness.bus, LbSynced, lambda e: e.scope == "all")
    with emu.lock:
        vip = next(v for v in emu.lb.live_vips() if v.describe() == WEB and not v.deleted)
        assert vip.src_ip_sticky
    assert set(programmed(emu)[WEB]) == {"192.0.2.9", "192.0.2.12", "192.0.2.30"}
    to_v6 = (
        CONFIG.replace("a: {address: 192.0.2.12", 'a: {address: "2001:db8::a"')
        .replace("b: {address: 192.0.2.9", 'b: {address: "2001:db8::b"')
        .replace("c: {address: 192.0.2.30", 'c: {address: "2001:db8::c"')
    )
    harness.lbsync.reconfigure(load_config(to_v6))
    await wait_for(harness.bus, LbSynced, lambda e: e.scope == "all")
    assert set(programmed(emu)[WEB]) == {"2001:db8::a", "2001:db8::b", "2001:db8::c"}, "gre4 -> gre6: recreated (37)"


@pytest_twisted.ensureDeferred
async def test_a_vip_vpp_rejects_is_reported_and_others_still_sync(emu: Emulator, tmp_path: Path) -> None:
    """An all-port VIP added behind maglevd's back on web's address: VPP refuses web's per-port
    VIP (VALUE_EXIST) until the stranger is gone; web6 is programmed regardless."""
    length = 128 if emu.flavour == "v26.06" else 32
    with emu.lock:
        prefix, plen = emu.lb.vip_key(0, bytes([198, 51, 100, 1]) + bytes(12), length)
        assert emu.lb.add_vip(prefix, plen, 255, 0, 0, 1024) == 0
    h = Harness(
        emu.api_socket,
        str(emu.stats_socket),
        load_config(CONFIG),
        {"a": "up", "b": "up", "c": "up", "v6a": "up", "v6b": "up"},
    )
    errors = wait_for(h.bus, LbSynced, lambda e: e.scope == "all")
    h.lbsync.startService()
    try:
        synced = await errors
        assert any("VALUE_EXIST" in e and "198.51.100.1" in e for e in synced.errors), synced.errors
        assert WEB6 in programmed(emu), "the other VIPs are programmed"
        again = await h.lbsync.request_sync(full=True)
        assert again.errors == [] and WEB in programmed(emu), "retried by the next sync"
    finally:
        await h.stop()


@pytest_twisted.ensureDeferred
async def test_restart_is_neutral(emu: Emulator, harness: Harness) -> None:
    await harness.stop()
    before = len(emu.requests)
    states = {b: "unknown" for b in harness.states}
    warm = CONFIG.replace(
        "startup-min-delay: 0s, startup-max-delay: 0s", "startup-min-delay: 200ms, startup-max-delay: 5s"
    )
    h2 = Harness(emu.api_socket, str(emu.stats_socket), load_config(warm), states)
    connected = wait_for(h2.bus, VppConnected)
    h2.lbsync.startService()
    try:
        await connected
        assert mutations(emu, before) == [], "nothing written before startup-min-delay"
        for name in ("a", "b", "c", "v6a", "v6b"):
            states[name] = "up"
            h2.bus.publish(BackendTransition(0.0, name, "unknown", "up", "L4OK", "", 4, True))
        await wait_for(h2.bus, LbSynced, lambda e: "web6" in e.frontends)
        await h2.lbsync.request_sync(frontends=["web", "web6"])
        bad = [
            (n, r)
            for n, r in mutations(emu, before)
            if getattr(r, "is_del", False) or (n == "lb_as_set_weight" and r.weight == 0)
        ]
        assert bad == [], "a restart must not remove or drain anything (44)"
    finally:
        await h2.stop()


@pytest_twisted.ensureDeferred
async def test_counters_and_disconnect(emu: Emulator, harness: Harness) -> None:
    emu.traffic("198.51.100.1/32", flows=10, packets=3, protocol="tcp", port=80)
    await harness.lbsync.read_counters()
    assert harness.lbsync.counters["web"]["first"] == 10 and harness.lbsync.counters["web"]["next"] == 20
    assert harness.lbsync.view.require_connected().pid > 0
    assert harness.lbsync.view.counter_rates == {}, "one read: no interval, no rate"
    emu.traffic("198.51.100.1/32", flows=5, packets=1, protocol="tcp", port=80, seed=1)
    await harness.lbsync.read_counters()
    rates = harness.lbsync.view.counter_rates["web"]
    assert rates["first"] > 0 and rates["next"] == 0.0 and rates["no-server"] == 0.0
    sent, received = harness.lbsync.view.api_traffic()
    assert sent >= received > 0, "the sync's messages and their replies are counted (the web UI's API pulse)"
    assert "route-packets" not in harness.lbsync.counters["web"], "../shared's definitions have no ip_route_lookup"


@pytest.mark.parametrize("flavour", ["master"])
@pytest_twisted.ensureDeferred
async def test_a_backends_own_word_reaches_vpp(emu: Emulator, harness: Harness) -> None:
    async def says(report: Report) -> LbSynced:
        synced = wait_for(harness.bus, LbSynced, lambda e: e.scope == "vip")
        harness.bus.publish(BackendReported(0.0, "a", "agent", report, str(report)))
        result: LbSynced = await synced
        return result

    since = len(emu.requests)
    await says(Report(percent=50))
    assert programmed(emu)[WEB]["192.0.2.12"] == (50, True), "its agent's 50% of weight 100"
    await says(Report("drain"))
    assert programmed(emu)[WEB]["192.0.2.12"] == (0, True)
    weights = [r for n, r in mutations(emu, since) if n == "lb_as_set_weight"]
    assert [(w.weight, w.is_flush) for w in weights] == [(50, False), (0, False)], "a drain never flushes"
    await says(Report("maint"))
    last = [r for n, r in mutations(emu, since) if n == "lb_as_set_weight"][-1]
    assert (last.weight, last.is_flush) == (0, True), "maint is an operator's disable: flushed"
    await says(Report())
    assert programmed(emu)[WEB]["192.0.2.12"] == (100, True), "ready: back to its configured weight"


@pytest.mark.skipif(vppapi.INSTALLED.is_dir(), reason="VPP's API definitions are installed: they would win")
@pytest.mark.parametrize("flavour", ["master", "v26.06"])
@pytest_twisted.ensureDeferred
async def test_route_counters_are_the_vip_prefixes_fib_entries(tmp_path: Path, flavour: str) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from maglev.dataplane.metrics import FrontendMetrics, VppCollector
    from maglev.metrics import series_of

    from .helpers import ANY, sample

    api = str(vppapi.packaged_api_dir())  # ../shared has no ip.api.json: both sides on the packaged ones
    emu = Emulator(str(tmp_path / "api.sock"), str(tmp_path / "stats.sock"), api, flavour).start()
    h = Harness(emu.api_socket, str(emu.stats_socket), load_config(CONFIG), dict.fromkeys("abc", "up"), None)
    try:
        await h.start()
        emu.traffic("198.51.100.1/32", flows=10, packets=3, protocol="tcp", port=80)
        await h.lbsync.read_counters()
        web, web6 = h.lbsync.counters["web"], h.lbsync.counters["web6"]
        assert (web["route-packets"], web["route-bytes"]) == (30, 30 * 40)
        assert (web6["route-packets"], web6["route-bytes"]) == (0, 0)
        emu.traffic("198.51.100.1/32", flows=4, packets=1, protocol="tcp", port=80, seed=1)
        await h.lbsync.read_counters()
        assert h.lbsync.counters["web"]["route-packets"] == 34
        assert h.lbsync.view.counter_rates["web"]["route-packets"] > 0
        registry = CollectorRegistry()
        registry.register(VppCollector(h.lbsync.view))
        text = generate_latest(registry).decode()
        assert 'maglev_vip_route_packets_total{frontend="web"} 34.0' in text
        assert 'maglev_vip_route_bytes_total{frontend="web"} 1360.0' in text
        assert 'kind="route-packets"' not in text
        # Every family it yields is described, so /metrics?name[]= can ask for it alone.
        collector = VppCollector(h.lbsync.view)
        assert {f.name for f in collector.collect()} <= {f.name for f in collector.describe()}
        alone = registry.restricted_registry(series_of(["maglev_vip_route_packets"]))
        assert [f.name for f in alone.collect()] == ["maglev_vip_route_packets"]
        # The per-member weights and each VIP's table as VPP holds it, written a frontend at a time.
        members = FrontendMetrics(h.lbsync.view)
        scraped = list(members.scrape(lambda _: True, False))
        assert scraped.count(None) == len(load_config(CONFIG).frontends)  # a pause after each frontend
        text = "".join(p for p in scraped if p is not None)
        table = h.lbsync.view.table("web")
        assert table is not None
        fe = {"frontend": "web"}
        assert (
            sample(text, "maglev_frontend_table_info", {**fe, "digest": table.digest, "length": str(table.length)}) == 1
        )
        assert sample(text, "maglev_frontend_weight_error_ratio", fe) == table.error
        weights = {a.backend: a.weight for a in h.lbsync.view.desired(["web"])["web"].ases}
        assert weights and all(
            sample(text, "maglev_frontend_pool_backend_weight", {**fe, "pool": ANY, "backend": b}) == w
            for b, w in weights.items()
        )
        only = "".join(p for p in members.scrape(lambda f: f == "maglev_frontend_weight_error_ratio", False) if p)
        assert (
            "maglev_frontend_table_info" not in only
            and sample(only, "maglev_frontend_weight_error_ratio", fe) == table.error
        )
    finally:
        await h.stop()
        emu.stop()


def test_disabled_vpp_refuses_sync_requests() -> None:
    s = LbSync(load_config(CONFIG), EventBus(), reactor(), {}, "", "", None)
    with pytest.raises(NotConnected):
        s.view.require_connected()
    failures: list[Any] = []
    s.request_sync(full=True).addErrback(failures.append)
    assert failures and failures[0].check(NotConnected)


@pytest_twisted.ensureDeferred
async def test_transitions_without_vpp_update_frontends_once_per_turn_and_raise_nothing() -> None:
    """VPP off: transitions still drive frontend states, coalesced per reactor turn, and no
    sync is attempted (it used to leave an unhandled NotConnected per transition)."""
    import gc

    bus = EventBus()
    states: dict[str, str] = {}  # the health checker's, changed before it announces
    s = LbSync(load_config(CONFIG), bus, reactor(), states, "", "", None)
    seen: list[FrontendTransition] = []
    bus.subscribe(FrontendTransition, seen.append)
    from twisted.logger import ILogObserver, globalLogPublisher

    errors: list[Any] = []
    observer = cast(ILogObserver, errors.append)

    globalLogPublisher.addObserver(observer)
    s.startService()
    try:
        seen.clear()
        for b in ("a", "b", "c"):
            states[b] = "up"
            bus.publish(BackendTransition(0.0, b, "unknown", "up", "L4OK", "", 2, True))
        assert seen == [], "worked out after the turn, not per transition"
        settled = Deferred[None]()
        reactor().callLater(0, settled.callback, None)
        await settled
        assert [(e.old, e.new) for e in seen if e.frontend == "web"] == [("unknown", "up")]
        gc.collect()
        assert not [e for e in errors if e.get("isError") or "Unhandled" in str(e.get("log_format", ""))]
    finally:
        globalLogPublisher.removeObserver(observer)
        s.stopService()


@pytest_twisted.ensureDeferred
async def test_emulator_killed_and_restarted(tmp_path: Path) -> None:
    api, stats = str(tmp_path / "k" / "api.sock"), str(tmp_path / "k" / "stats.sock")
    proc = start_emulator(api, stats, str(API_DIR))
    states = {"a": "up", "b": "up", "c": "up", "v6a": "up", "v6b": "up"}
    h = Harness(api, stats, load_config(CONFIG), states)
    try:
        await h.start()
        lost = wait_for(h.bus, Event, lambda e: type(e).__name__ == "VppDisconnected", timeout=30)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        h.lbsync.link.ping()  # do not wait 10 s for the liveness ping
        await lost
        back = wait_for(h.bus, LbSynced, lambda e: e.scope == "all", timeout=30)
        proc = start_emulator(api, stats, str(API_DIR))
        await back
        from vpp_papi import VPPApiClient

        c = VPPApiClient(apidir=str(API_DIR), server_address=api)
        c.connect("check")
        try:
            weights = sorted((str(d.app_srv), d.weight) for d in c.api.lb_as_v2_dump() if d.flags & 1)
        finally:
            c.disconnect()
        assert weights == [
            ("192.0.2.12", 100), ("192.0.2.30", 0), ("192.0.2.9", 50), ("2001:db8::12", 100), ("2001:db8::5", 100),
        ]  # fmt: skip
    finally:
        await h.stop()
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


@pytest.mark.skipif(vppapi.INSTALLED.is_dir(), reason="VPP's API definitions are installed: they would win")
@pytest_twisted.ensureDeferred
async def test_without_vpp_installed_both_sides_run_on_the_packaged_definitions(tmp_path: Path) -> None:
    api, stats = str(tmp_path / "p" / "api.sock"), str(tmp_path / "p" / "stats.sock")
    proc = start_emulator(api, stats)  # no --api-dir: the emulator as packaged, on a machine without VPP
    h = Harness(api, stats, load_config(CONFIG), {"a": "up", "b": "up", "c": "up", "v6a": "up", "v6b": "up"}, None)
    try:
        await h.start()
        down = await h.transition("b", "down")
        assert down.errors == () and down.changes > 0
        from vpp_papi import VPPApiClient

        c = VPPApiClient(apidir=str(vppapi.packaged_api_dir()), server_address=api)
        c.connect("check")
        try:
            weights = sorted((str(d.app_srv), d.weight) for d in c.api.lb_as_v2_dump() if d.flags & 1)
            version = c.api.show_version().version
        finally:
            c.disconnect()
        assert weights == [
            ("192.0.2.12", 100), ("192.0.2.30", 0), ("192.0.2.9", 0), ("2001:db8::12", 100), ("2001:db8::5", 100),
        ]  # fmt: skip
        assert version
    finally:
        await h.stop()
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


@pytest.mark.parametrize("flavour", ["master"])
@pytest_twisted.ensureDeferred
async def test_periodic_sync_repairs_drift_by_itself(emu: Emulator) -> None:
    periodic = CONFIG.replace("sync-interval: 1h", "sync-interval: 1s")
    h = Harness(
        emu.api_socket,
        str(emu.stats_socket),
        load_config(periodic),
        {"a": "up", "b": "up", "c": "up", "v6a": "up", "v6b": "up"},
    )
    await h.start()
    try:
        with emu.lock:  # somebody changes VPP behind our back
            vip = next(v for v in emu.lb.live_vips() if v.describe() == WEB)
            emu.lb.set_weight(
                vip, next(a.address for a in emu.lb.ases_of(vip) if show_address(a.address) == "192.0.2.12"), 1
            )
        repaired = await wait_for(h.bus, LbSynced, lambda e: e.scope == "all" and e.changes > 0, timeout=5)
        assert repaired.changes == 1
        assert programmed(emu)[WEB]["192.0.2.12"][0] == 100
    finally:
        await h.stop()


@pytest.mark.parametrize("flavour", ["master"])
@pytest_twisted.ensureDeferred
async def test_warmup_releases_each_vip_when_known_and_everything_at_max_delay(emu: Emulator) -> None:
    warm = CONFIG.replace(
        "startup-min-delay: 0s, startup-max-delay: 0s", "startup-min-delay: 100ms, startup-max-delay: 1s"
    )
    states = {"a": "unknown", "b": "unknown", "c": "unknown", "v6a": "up", "v6b": "up"}
    h = Harness(emu.api_socket, str(emu.stats_socket), load_config(warm), states)
    first = wait_for(h.bus, LbSynced, lambda e: e.frontends == ("web6",))
    synced: list[LbSynced] = []
    h.bus.subscribe(LbSynced, synced.append)
    h.lbsync.startService()
    try:
        await first  # web6's backends are known: released after the min delay
        assert WEB not in programmed(emu), "web still has unknown backends: held back"
        last = await wait_for(h.bus, LbSynced, lambda e: e.scope == "all" and "web" in e.frontends, timeout=5)
        assert WEB in programmed(emu), "everything is synced at startup-max-delay"
        assert h.lbsync.model.warm
        # Only the sync after the warm-up is complete (gcpolicy settles once after it).
        assert last.complete and [e.complete for e in synced[:-1]] == [False] * (len(synced) - 1)
    finally:
        await h.stop()


def as_of(request: Any) -> str:
    """The AS address of an lb request ("" for one without)."""
    a = getattr(request, "as_address", None)
    if a is None:
        return ""
    raw = bytes(a.un.ip6) if int(a.af) else bytes(a.un.ip4)[:4]
    return str(ipaddress.ip_address(raw))


@pytest_twisted.ensureDeferred
async def test_a_removed_backend_drains_then_goes_and_a_reload_can_bring_it_back(
    emu: Emulator, harness: Harness
) -> None:
    """Weight 0 without flush first (established flows stay), removed (without flush) after
    drain-timeout; brought back by a reload within the drain, it is simply wanted again."""
    drained = CONFIG.replace("      port: 80\n", "      port: 80\n      drain-timeout: 1s\n", 1)
    harness.lbsync.reconfigure(load_config(drained))
    await wait_for(harness.bus, LbSynced, lambda e: e.scope == "all")
    without_b = load_config(drained.replace("a: {weight: 100}, b: {weight: 50}", "a: {weight: 100}"))
    since = len(emu.requests)
    harness.lbsync.reconfigure(without_b)
    await wait_for(harness.bus, LbSynced, lambda e: e.scope == "all")
    sent = [(n, r) for n, r in mutations(emu, since) if as_of(r) == "192.0.2.9"]
    if emu.lb.weights:
        assert programmed(emu)[WEB]["192.0.2.9"] == (0, True), "no new flows, still in VPP"
        assert [(n, r.weight, r.is_flush) for n, r in sent] == [("lb_as_set_weight", 0, False)]
        assert [d.address for d in harness.lbsync.model.drains.draining_of("web")] == [
            ipaddress.ip_address("192.0.2.9")
        ]
        gone = wait_for(harness.bus, LbSynced, lambda e: "192.0.2.9" not in programmed(emu)[WEB])
        await gone  # after the drain's 1 s, on the reactor's own clock
        deletes = [r for n, r in mutations(emu, since) if as_of(r) == "192.0.2.9" and getattr(r, "is_del", False)]
        assert [r.is_flush for r in deletes] == [False], "removed without flush"
    else:
        assert "192.0.2.9" not in programmed(emu)[WEB], "without weights a drain is a removal"
        assert [(r.is_del, r.is_flush) for _, r in sent] == [(True, False)], "...without flush"
    long = load_config(drained.replace("drain-timeout: 1s", "drain-timeout: 1h"))
    harness.lbsync.reconfigure(long)
    await wait_for(harness.bus, LbSynced, lambda e: e.scope == "all")
    harness.lbsync.reconfigure(
        load_config(
            drained.replace("drain-timeout: 1s", "drain-timeout: 1h").replace(
                "a: {weight: 100}, b: {weight: 50}", "a: {weight: 100}"
            )
        )
    )
    await wait_for(harness.bus, LbSynced, lambda e: e.scope == "all")
    harness.lbsync.reconfigure(long)  # back before the hour is up
    await wait_for(harness.bus, LbSynced, lambda e: e.scope == "all")
    assert harness.lbsync.model.drains.draining_of("web") == []
    assert programmed(emu)[WEB]["192.0.2.9"] == ((50, True) if emu.lb.weights else (100, True))


@pytest_twisted.ensureDeferred
async def test_a_timed_weight_reverts_in_vpp(emu: Emulator, harness: Harness) -> None:
    """set ... weight 0 for 10m: VPP holds 0, then the configured 50 again when the time is up."""
    from twisted.internet.task import Clock

    from maglev.health.service import HealthService
    from maglev.overrideservice import OverrideService

    clock = Clock()
    health = HealthService(harness.config, harness.bus, clock, wallclock=clock.seconds)
    overrides = OverrideService(health, harness.lbsync, harness.bus, clock)
    overrides.startService()
    await overrides.set_weight("web", "primary", "b", 0, False, 600)
    if emu.lb.weights:
        assert programmed(emu)[WEB]["192.0.2.9"] == (0, True)
    else:
        assert "192.0.2.9" not in programmed(emu)[WEB]
    back = wait_for(harness.bus, LbSynced, lambda e: e.scope == "vip")
    clock.advance(600)
    await back
    assert programmed(emu)[WEB]["192.0.2.9"] == ((50, True) if emu.lb.weights else (100, True))
    overrides.stopService()


@pytest.mark.parametrize("flavour", ["master"])  # VPP without weights cannot ramp (documented)
@pytest_twisted.ensureDeferred
async def test_slow_start_ramps_the_weight_vpp_holds(emu: Emulator, harness: Harness) -> None:
    """b (weight 50, slow-start 4s) comes back up: VPP gets 13, 13, 25, 38, 50, a step a second."""
    from twisted.internet.task import Clock

    from maglev.dataplane.ramper import Ramper

    config = load_config(CONFIG.replace("{name: primary, backends:", "{name: primary, slow-start: 4s, backends:"))
    assert config.frontends["web"].pools[0].slow_start == 4.0
    harness.lbsync.reconfigure(config)
    await wait_for(harness.bus, LbSynced, lambda e: e.scope == "all")
    harness.lbsync.safety.ramper.stop()
    clock = Clock()
    ramper = Ramper(harness.lbsync.model, clock, lambda fes: harness.lbsync.request_sync(frontends=fes))
    ramper.start(harness.bus)
    try:
        await harness.transition("b", "down")
        await harness.transition("b", "up")
        seen = [programmed(emu)[WEB]["192.0.2.9"][0]]
        for _ in range(4):
            synced = wait_for(harness.bus, LbSynced, lambda e: e.scope == "vip")
            clock.advance(1)
            await synced
            seen.append(programmed(emu)[WEB]["192.0.2.9"][0])
        assert seen == [13, 13, 25, 38, 50]
        assert harness.lbsync.model.ramps.started == {}, "done"
    finally:
        ramper.stop()


@pytest.mark.parametrize("flavour", ["master"])
@pytest_twisted.ensureDeferred
async def test_a_flapping_backend_is_suppressed_in_vpp(emu: Emulator, harness: Harness) -> None:
    config = load_config(CONFIG.replace("b: {address: 192.0.2.9, healthcheck: h}",
                                        "b: {address: 192.0.2.9, healthcheck: h, dampening: true}"))  # fmt: skip
    harness.lbsync.reconfigure(config)
    await wait_for(harness.bus, LbSynced, lambda e: e.scope == "all")
    for _ in range(3):
        await harness.transition("b", "down")
        await harness.transition("b", "up")
    assert harness.lbsync.model.flaps.suppressed == {"b"}
    assert programmed(emu)[WEB]["192.0.2.9"] == (0, True), "kept out although its checks pass"
    since = len(emu.requests)
    await harness.lbsync.request_sync(full=True)
    assert [r for _, r in mutations(emu, since) if as_of(r) == "192.0.2.9"] == [], "and it stays so"


@pytest.mark.parametrize("flavour", ["master"])
@pytest_twisted.ensureDeferred
async def test_on_all_down_keep_fails_open_in_vpp(emu: Emulator, harness: Harness) -> None:
    harness.lbsync.reconfigure(
        load_config(CONFIG.replace("      port: 80\n", "      port: 80\n      on-all-down: keep\n", 1))
    )
    await wait_for(harness.bus, LbSynced, lambda e: e.scope == "all")
    for b in ("a", "b", "c"):
        await harness.transition(b, "down")
    got = programmed(emu)[WEB]
    assert got["192.0.2.30"] == (100, True), "the fallback's last weight stays: new flows still served"
    assert harness.lbsync.view.frontend_states["web"].value == "failing-open"


@pytest.mark.parametrize("flavour", ["master"])
@pytest_twisted.ensureDeferred
async def test_checker_isolation_holds_vpp_as_it_was(emu: Emulator, harness: Harness) -> None:
    guarded = CONFIG.replace("maglev:\n", "maglev:\n  healthchecker: {isolation-threshold: 50, isolation-window: 1h}\n")
    harness.lbsync.reconfigure(load_config(guarded))
    await wait_for(harness.bus, LbSynced, lambda e: e.scope == "all")
    before = programmed(emu)[WEB]
    await harness.transition("a", "down")
    await harness.transition("b", "down")
    held = wait_for(harness.bus, LbSynced, lambda e: programmed(emu)[WEB] == before)
    await harness.transition("c", "down")  # 3 of 5 backends: more than half at once
    await held
    assert harness.lbsync.view.isolation()[0] and harness.lbsync.view.isolation()[2] == ["a", "b", "c"]
    released = wait_for(harness.bus, LbSynced, lambda e: programmed(emu)[WEB]["192.0.2.12"][0] == 0)
    assert harness.lbsync.safety.isolation.release("test") == ["a", "b", "c"]
    await released
