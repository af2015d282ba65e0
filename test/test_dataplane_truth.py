"""What real VPP showed maglevd getting wrong, each against the emulator through the real
vpp_papi client, in both generations where it applies: VIPs keyed by VPP's own key (UDP,
all-port), counters of all-port VIPs, the l3dsr and NAT arguments, kinds a VPP cannot hold,
a VPP restart noticed at once, and a peer that claims a 4 GB message."""

from __future__ import annotations

import io
import os
import resource
import selectors
import signal
import socket
import struct
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from prometheus_client import CollectorRegistry
from twisted.logger import ILogObserver, globalLogPublisher

from maglev.api import convert
from maglev.config import load_config
from maglev.dataplane.metrics import VppCollector
from maglev.events import Event, FrontendTransition, LbSynced, VppConnected
from maglev.maglevc import render
from maglev.maglevc.out import Out
from maglev.vppemu.lb import show_address
from maglev.vppemu.process import start_emulator
from maglev.vppemu.server import Emulator

from .emu import API_DIR
from .test_lbsync import Harness, mutations, wait_for

pytestmark = pytest.mark.slow

BASE = """\
maglev:
  vpp:
    lb: {ipv4-src-address: 192.0.2.254, ipv6-src-address: "2001:db8::fe", sync-interval: 1h,
         startup-min-delay: 0s, startup-max-delay: 0s}
  healthchecks: {h: {type: tcp, port: 53}}
  backends:
    a: {address: 192.0.2.12, healthcheck: h}
    b: {address: 192.0.2.9, healthcheck: h}
  frontends:
    dns-tcp:
      address: 198.51.100.53
      port: 53
      pools: [{name: p, backends: {a: {}}}]
"""
UDP = """\
    dns-udp:
      address: 198.51.100.53
      protocol: udp
      port: 53
      pools: [{name: p, backends: {b: {}}}]
"""
ALL_PORTS = """\
    everything:
      address: 198.51.100.54
      protocol: any
      pools: [{name: p, backends: {a: {}, b: {}}}]
"""
L3DSR = """\
    dsr:
      address: 198.51.100.60
      port: 443
      encap: l3dsr
      dscp: 10
      pools: [{name: p, backends: {a: {}}}]
"""
NAT = """\
    nat:
      address: 198.51.100.61
      port: 8080
      encap: nat4
      target-port: 8081
      pools: [{name: p, backends: {b: {}}}]
"""
UP = {"a": "up", "b": "up"}


@pytest_twisted.async_yield_fixture
async def harness(emu: Emulator) -> AsyncIterator[Harness]:
    # drain-timeout 0: these tests are about removing VIPs by their own key (drains: test_drain.py)
    removable = (UDP + ALL_PORTS).replace("      pools:", "      drain-timeout: 0s\n      pools:")
    h = Harness(emu.api_socket, str(emu.stats_socket), load_config(BASE + removable), dict(UP))
    await h.start()
    yield h
    await h.stop()


@contextmanager
def logged(event: str) -> Iterator[list[dict[str, Any]]]:
    """The log events named ``event`` while the block runs."""
    seen: list[dict[str, Any]] = []

    def watch(e: dict[str, Any]) -> None:
        if e.get("event") == event:
            seen.append(e)

    observer: ILogObserver = watch  # type: ignore[assignment]
    globalLogPublisher.addObserver(observer)
    try:
        yield seen
    finally:
        globalLogPublisher.removeObserver(observer)


def vips(emu: Emulator) -> dict[tuple[str, int, int], list[str]]:
    """(address, protocol, port) -> the ASes in use, from the emulator's model."""
    with emu.lock:
        out = {}
        for vip in emu.lb.listed_vips():
            if not vip.deleted:
                key = (show_address(vip.prefix), vip.protocol, vip.port)
                out[key] = sorted(show_address(a.address) for a in emu.lb.ases_of(vip) if a.used)
        return out


async def reload(h: Harness, text: str) -> LbSynced:
    synced = wait_for(h.bus, LbSynced, lambda e: e.scope == "all")
    h.lbsync.reconfigure(load_config(text))
    result: LbSynced = await synced
    return result


@pytest_twisted.ensureDeferred
async def test_udp_and_all_port_vips_are_removed_by_their_own_key(emu: Emulator, harness: Harness) -> None:
    """26.06 dumps protocol 0: a UDP VIP used to be deleted as tcp:53 (NO_SUCH_ENTRY for ever)."""
    assert vips(emu) == {
        ("198.51.100.53", 6, 53): ["192.0.2.12"],
        ("198.51.100.53", 17, 53): ["192.0.2.9"],
        ("198.51.100.54", 255, 0): ["192.0.2.12", "192.0.2.9"],
    }
    result = await reload(harness, BASE)
    assert result.errors == ()
    assert vips(emu) == {("198.51.100.53", 6, 53): ["192.0.2.12"]}
    again = await harness.lbsync.request_sync(full=True)
    assert again.errors == [] and [op for op in again.done if type(op).__name__ != "SetConf"] == []


@pytest_twisted.ensureDeferred
async def test_a_udp_vip_added_by_hand_is_removed(emu: Emulator, harness: Harness) -> None:
    await reload(harness, BASE)
    length = 128 if emu.flavour == "v26.06" else 32
    with emu.lock:
        prefix, plen = emu.lb.vip_key(0, bytes([198, 51, 100, 99]) + bytes(12), length)
        assert emu.lb.add_vip(prefix, plen, 17, 5353, 0, 1024) == 0
    result = await harness.lbsync.request_sync(full=True)
    assert result.errors == []
    assert vips(emu) == {("198.51.100.53", 6, 53): ["192.0.2.12"]}


@pytest_twisted.ensureDeferred
async def test_all_port_vips_have_counters(emu: Emulator, harness: Harness) -> None:
    emu.traffic("198.51.100.54/32", flows=3, packets=4)
    emu.traffic("198.51.100.53/32", flows=2, packets=1, protocol="udp", port=53)
    await harness.lbsync.read_counters()
    counters = harness.lbsync.view.counters
    assert counters["everything"]["first"] == 3 and counters["everything"]["next"] == 9
    assert counters["dns-udp"]["first"] == 2 and counters["dns-tcp"]["first"] == 0


@pytest.mark.parametrize("flavour", ["master"])
@pytest_twisted.ensureDeferred
async def test_l3dsr_and_nat_arguments_reach_vpp_and_a_change_recreates(emu: Emulator, harness: Harness) -> None:
    result = await reload(harness, BASE + L3DSR + NAT)
    assert result.errors == ()
    with emu.lock:
        listed = {v.port: v for v in emu.lb.listed_vips() if not v.deleted}
        assert (listed[443].type.label, listed[443].dscp) == ("ip4-l3dsr", 10)
        assert (listed[8080].type.label, listed[8080].target_port, listed[8080].srv_type) == ("ip4-nat4", 8081, 0)
        old_index = listed[443].index
    _, observed = await harness.lbsync.read_vpp()
    read = {k.port: v for k, v in observed.items()}
    assert read[443].dscp == 10 and read[8080].nat is not None and read[8080].nat.target_port == 8081
    nothing = await harness.lbsync.request_sync(full=True)
    assert [type(op).__name__ for op in nothing.done if type(op).__name__ != "SetConf"] == [], "read back the same"
    changed = await reload(harness, BASE + L3DSR.replace("dscp: 10", "dscp: 46") + NAT)
    assert changed.errors == ()
    assert harness.lbsync.last_sync is not None and "dsr" in harness.lbsync.last_sync.recreated
    with emu.lock:
        dsr = next(v for v in emu.lb.listed_vips() if v.port == 443 and not v.deleted)
        assert dsr.dscp == 46 and dsr.index != old_index


@pytest.mark.parametrize("flavour", ["v26.06"])
@pytest_twisted.ensureDeferred
async def test_a_kind_this_vpp_cannot_hold_is_reported_once_and_never_sent(emu: Emulator, harness: Harness) -> None:
    states: list[FrontendTransition] = []
    harness.bus.subscribe(FrontendTransition, lambda e: states.append(e) if e.frontend == "dsr" else None)
    with logged("lb-vip-unsupported") as warnings:
        since = len(mutations(emu))
        await reload(harness, BASE + L3DSR)
        for _ in range(3):
            result = await harness.lbsync.request_sync(full=True)
            assert result.errors == []
        await harness.lbsync.request_sync(frontends=["dsr"])
    await harness.lbsync.read_counters()  # reads VPP's state once, if a VIP is new since the last read
    with emu.lock:
        reads = sum(1 for name, _ in emu.requests if name == "cli_inband")
    for _ in range(3):
        await harness.lbsync.read_counters()
    with emu.lock:
        assert sum(1 for name, _ in emu.requests if name == "cli_inband") == reads, "the missing VIP costs no reads"
    sent = [r for name, r in mutations(emu)[since:] if int(getattr(r, "port", 0)) == 443]
    assert sent == [], "nothing for the l3dsr VIP reached VPP"
    assert [(e.old, e.new) for e in states] == [("unsupported", "unsupported")]
    assert len(warnings) == 1 and "l3dsr on an IPv4 VIP needs lb.api 1.2.0" in warnings[0]["why"]
    view = harness.lbsync.view
    assert view.frontend_state("dsr") == "unsupported"
    assert view.frontend_detail("dsr").startswith("unsupported by this VPP: l3dsr")
    assert view.frontend_state("dns-tcp") == "up"
    registry = CollectorRegistry()
    registry.register(VppCollector(view))
    gauge = registry.get_sample_value
    assert gauge("maglev_frontend_state", {"frontend": "dsr", "state": "unsupported"}) == 1.0
    assert gauge("maglev_frontend_state", {"frontend": "dns-tcp", "state": "unsupported"}) == 0.0
    out = io.StringIO()
    info = convert.frontend_info(
        load_config(BASE + L3DSR).frontends["dsr"],
        view.desired(["dsr"])["dsr"], view, {"a": "up"},
    )  # fmt: skip
    assert info.state == "unsupported" and info.state_detail.startswith("unsupported by this VPP")
    render.frontend(Out(False, out), info)
    assert "unsupported by this VPP: l3dsr on an IPv4 VIP needs lb.api 1.2.0" in out.getvalue()


@pytest_twisted.ensureDeferred
async def test_a_vpp_restart_is_noticed_at_once_and_the_state_rebuilt(tmp_path: Path, flavour: str) -> None:
    api, stats = str(tmp_path / "r" / "api.sock"), str(tmp_path / "r" / "stats.sock")
    extra = ("--flavour", flavour)
    proc = start_emulator(api, stats, str(API_DIR), *extra)
    h = Harness(api, stats, load_config(BASE + UDP + ALL_PORTS), dict(UP))
    try:
        await h.start()
        before = await h.lbsync.read_vpp()
        # The keepalive is 10 s away: only the closed socket can tell within the bound.
        lost = wait_for(h.bus, Event, lambda e: type(e).__name__ == "VppDisconnected", timeout=5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        await lost
        back = wait_for(h.bus, LbSynced, lambda e: e.scope == "all" and e.changes > 0, timeout=10)
        connected = wait_for(h.bus, VppConnected, timeout=10)
        proc = start_emulator(api, stats, str(API_DIR), *extra)
        await connected
        synced = await back
        assert synced.errors == ()
        after = await h.lbsync.read_vpp()
        assert {k: sorted(v.ases) for k, v in after[1].items()} == {k: sorted(v.ases) for k, v in before[1].items()}
        assert after[0] == before[0], "lb conf too"
    finally:
        await h.stop()
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


class HostileProxy:
    """Forwards maglevd's connections to the emulator, until told to send each client a
    frame header claiming 4 GB."""

    def __init__(self, path: str, upstream: str) -> None:
        self.upstream = upstream
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(16)
        self.listener.setblocking(False)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.listener, selectors.EVENT_READ)
        self.pairs: dict[socket.socket, socket.socket] = {}
        self.clients: list[socket.socket] = []
        self.poison = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            if self.poison.is_set():
                self.poison.clear()
                for c in list(self.clients):
                    try:
                        c.sendall(struct.pack(">QII", 0, 0xFFFFFFF0, 0))
                    except OSError:
                        pass
            for key, _ in self.sel.select(0.05):
                s = key.fileobj
                assert isinstance(s, socket.socket)
                if s is self.listener:
                    client, _ = s.accept()
                    up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    up.connect(self.upstream)
                    self.pairs[client], self.pairs[up] = up, client
                    self.clients.append(client)
                    self.sel.register(client, selectors.EVENT_READ)
                    self.sel.register(up, selectors.EVENT_READ)
                    continue
                try:
                    data = s.recv(1 << 16)
                except OSError:
                    data = b""
                other = self.pairs.get(s)
                if not data or other is None:
                    self.drop(s)
                    continue
                try:
                    other.sendall(data)
                except OSError:
                    self.drop(s)

    def drop(self, s: socket.socket) -> None:
        for x in (s, self.pairs.pop(s, None)):
            if x is not None:
                self.pairs.pop(x, None)
                if x in self.clients:
                    self.clients.remove(x)
                try:
                    self.sel.unregister(x)
                except (KeyError, ValueError):
                    pass
                x.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        for s in list(self.pairs):
            s.close()
        self.listener.close()


@pytest.mark.parametrize("flavour", ["master"])
@pytest_twisted.ensureDeferred
async def test_a_peer_claiming_a_4gb_message_is_dropped_not_believed(emu: Emulator, tmp_path: Path) -> None:
    proxied = str(tmp_path / "proxied.sock")
    proxy = HostileProxy(proxied, emu.api_socket)
    h = Harness(proxied, str(emu.stats_socket), load_config(BASE), dict(UP))
    try:
        await h.start()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
        lost = wait_for(h.bus, Event, lambda e: type(e).__name__ == "VppDisconnected", timeout=5)
        again = wait_for(h.bus, VppConnected, timeout=10)
        with logged("vpp-protocol-error") as errors:
            proxy.poison.set()
            disconnected = await lost
            assert "claiming 4294967280 bytes" in disconnected.reason
            await again
        assert errors and "claiming 4294967280 bytes" in errors[0]["error"]
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak
        assert grown < 256 * 1024, f"peak RSS grew by {grown} KiB"
        result = await h.lbsync.request_sync(full=True)
        assert result.errors == [] and result.io_error is None, "working again after the reconnect"
    finally:
        await h.stop()
        proxy.close()
        if os.path.exists(proxied):
            os.unlink(proxied)
