"""Health checking across network namespaces: real kernels, real packets, real time.

Every address used here lives inside namespaces and veth pairs the tests create.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import sys
import textwrap
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred

from maglev.bus import EventBus
from maglev.config import Backend, CheckType, HealthCheck, load_config
from maglev.events import BackendTransition
from maglev.health.netns import Netns
from maglev.health.probes import ProbeFactory, run
from maglev.health.service import HealthService

from .helpers import ROOT
from .netns import namespace, needs_netns, veth_to

pytestmark = [pytest.mark.slow, needs_netns]


def reactor() -> Any:
    from twisted.internet import reactor as r

    return r


def listener_in(ns: str) -> tuple[socket.socket, int]:
    """A TCP listener on 127.0.0.1 inside ``ns`` (the kernel completes handshakes without accept())."""
    sock = Netns(ns).call(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port: int = sock.getsockname()[1]
    return sock, port


def free_here(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest_twisted.ensureDeferred
async def test_backend_reachable_only_inside_the_namespace() -> None:
    with namespace() as ns:
        sock, port = listener_in(ns)
        try:
            assert free_here(port), "the port must be closed in this namespace for the test to mean anything"
            hc = HealthCheck("tcp", CheckType.TCP, port=port, timeout=1.0)
            b = Backend("b0", ipaddress.ip_address("127.0.0.1"), "tcp")
            inside = ProbeFactory(reactor(), ns)
            outside = ProbeFactory(reactor())
            try:
                r_in = await run(inside.probe_for(b, hc))
                r_out = await run(outside.probe_for(b, hc))
            finally:
                inside.close()
                outside.close()
            assert (r_in.ok, r_in.code) == (True, "L4OK"), r_in
            assert (r_out.ok, r_out.code) == (False, "L4CON"), r_out
        finally:
            sock.close()


@pytest_twisted.ensureDeferred
async def test_idle_sockets_of_a_namespace_created_anew_are_not_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Probe sockets are kept for reuse, but they belong to the namespace they were made in:
    once /run/netns/NAME is a new namespace, probes go there, not to the old one."""
    from maglev.health.probes import tcp as tcpmod

    from .netns import ip

    monkeypatch.setattr(tcpmod, "NETNS_RECHECK", 0.0)
    with namespace() as ns:
        old, port = listener_in(ns)
        factory = ProbeFactory(reactor(), ns)
        hc = HealthCheck("tcp", CheckType.TCP, port=port, timeout=1.0)
        b = Backend("b0", ipaddress.ip_address("127.0.0.1"), "tcp")
        new = None
        try:
            r = await run(factory.probe_for(b, hc))
            assert (r.ok, r.code) == (True, "L4OK"), r
            ip("netns", "del", ns)  # the old namespace lives on in its sockets
            ip("netns", "add", ns)
            ip("-n", ns, "link", "set", "lo", "up")
            r = await run(factory.probe_for(b, hc))
            assert (r.ok, r.code) == (False, "L4CON"), f"probed the old namespace: {r}"
            new = Netns(ns).call(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            new.bind(("127.0.0.1", port))
            new.listen(8)
            r = await run(factory.probe_for(b, hc))
            assert (r.ok, r.code) == (True, "L4OK"), r
            assert factory.connect.counts()["sockets_opened"] == 2
        finally:
            factory.close()
            old.close()
            if new is not None:
                new.close()


@pytest_twisted.ensureDeferred
async def test_http_and_icmp_inside_the_namespace() -> None:
    from twisted.web.server import Site

    from .servers import Behaviour, ControlledResource, stop

    with namespace() as ns:
        sock, port = listener_in(ns)
        sock.setblocking(False)
        behaviour = Behaviour()
        listening = reactor().adoptStreamPort(
            sock.fileno(), socket.AF_INET, Site(ControlledResource(behaviour, reactor()))
        )
        sock.close()  # adoptStreamPort duplicated it
        factory = ProbeFactory(reactor(), ns)
        try:
            b = Backend("b0", ipaddress.ip_address("127.0.0.1"), "hc")
            r = await run(factory.probe_for(b, load_config_hc("http", port)))
            assert (r.ok, r.code) == (True, "L7OK"), r
            r = await run(factory.probe_for(b, load_config_hc("icmp", None)))
            assert (r.ok, r.code) == (True, "L3OK"), r
            assert behaviour.requests, "the request reached the server inside the namespace"
        finally:
            factory.close()
            await stop(listening)


def load_config_hc(kind: str, port: int | None) -> HealthCheck:
    port_line = f"port: {port}, " if port else ""
    cfg = load_config(f"maglev:\n  healthchecks:\n    hc: {{type: {kind}, {port_line}timeout: 1s}}\n")
    return cfg.healthchecks["hc"]


def wait_for_transition(bus: EventBus, backend: str, new: str, timeout: float) -> Deferred[BackendTransition]:
    d: Deferred[BackendTransition] = Deferred()

    def seen(t: BackendTransition) -> None:
        if t.backend == backend and t.new == new and not d.called:
            sub.cancel()
            d.callback(t)

    sub = bus.subscribe(BackendTransition, seen)
    d.addTimeout(timeout, reactor())
    return d


@pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP sockets need root")
@pytest_twisted.ensureDeferred
async def test_icmp_backend_behind_a_veth_goes_down_and_comes_back() -> None:
    rise, fall = 2, 3
    config = load_config(
        textwrap.dedent(
            f"""\
            maglev:
              healthchecks:
                ping: {{type: icmp, interval: 100ms, fast-interval: 100ms, down-interval: 100ms,
                        timeout: 150ms, rise: {rise}, fall: {fall}}}
              backends:
                peer: {{address: 169.254.77.2, healthcheck: ping}}
            """
        )
    )
    with namespace() as ns, veth_to(ns, "169.254.77.1", "169.254.77.2", 30) as (host_side, peer_side):
        bus = EventBus()
        svc = HealthService(config, bus, reactor())
        results: list[bool] = []
        svc.observers.append(lambda seen: results.append(seen.result.ok))
        up = wait_for_transition(bus, "peer", "up", 10)
        svc.startService()
        try:
            await up
            down = wait_for_transition(bus, "peer", "down", 10)
            subprocess.run(["ip", "-n", ns, "link", "set", peer_side, "down"], check=True)
            cut = len(results)
            t = await down
            assert t.code in ("L3TOUT", "L3ERR", "L3UNR"), t
            after_cut = results[cut:]
            # Down exactly at the `fall`-th consecutive failure (a reply in flight at the cut may still pass).
            assert after_cut[-fall:] == [False] * fall and len(after_cut) <= fall + 1, after_cut
            up = wait_for_transition(bus, "peer", "up", 10)
            subprocess.run(["ip", "-n", ns, "link", "set", peer_side, "up"], check=True)
            fix = len(results)
            await up
            after_fix = results[fix:]
            # Up exactly at the `rise`-th consecutive pass (the link may need a few probes to carry traffic).
            assert after_fix[-rise:] == [True] * rise, after_fix
            assert True not in after_fix[:-rise] or after_fix[:-rise][-1] is False, after_fix
        finally:
            svc.stopService()


PROBE_SCRIPT = """
import ipaddress, sys
from twisted.internet import asyncioreactor
asyncioreactor.install()
from twisted.logger import globalLogBeginner, LogLevel
from maglev.log import observer_for
globalLogBeginner.beginLoggingTo([observer_for(sys.stdout, LogLevel.info)], redirectStandardIO=False)
from twisted.internet import reactor, defer
from maglev.config import Backend, CheckType, HealthCheck
from maglev.health.probes import ProbeFactory, run

async def main():
    f = ProbeFactory(reactor, sys.argv[1])
    hc = HealthCheck("tcp", CheckType.TCP, port=80, timeout=1.0)
    r = await run(f.probe_for(Backend("b", ipaddress.ip_address("127.0.0.1"), "tcp"), hc))
    print("RESULT", r.code, r.detail)

reactor.callWhenRunning(lambda: defer.ensureDeferred(main()).addBoth(lambda _: reactor.stop()))
reactor.run()
"""


def test_without_cap_sys_admin_every_probe_fails_with_l4con_and_a_clear_log() -> None:
    with namespace() as ns:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        r = subprocess.run(
            ["setpriv", "--bounding-set=-sys_admin", "--inh-caps=-sys_admin", sys.executable, "-c", PROBE_SCRIPT, ns],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
    assert f'RESULT L4CON enter netns "{ns}": operation not permitted' in r.stdout, (r.stdout, r.stderr)
    logged = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert any(
        rec.get("event") == "netns-error" and rec["msg"] == f'enter netns "{ns}": operation not permitted'
        for rec in logged
    ), logged


ICMP_SCRIPT = """
import ipaddress, sys
from twisted.internet import asyncioreactor
asyncioreactor.install()
from twisted.internet import reactor, defer
from maglev.config import Backend, CheckType, HealthCheck
from maglev.health.probes import ProbeFactory, run

async def main():
    f = ProbeFactory(reactor, sys.argv[1])
    hc = HealthCheck("ping", CheckType.ICMP, timeout=1.0)
    r = await run(f.probe_for(Backend("b", ipaddress.ip_address("127.0.0.1"), "ping"), hc))
    pinger = f.pingers.get(4, f.netns, None)
    print("RESULT", r.code, "raw" if pinger.raw else "dgram", r.detail)

reactor.callWhenRunning(lambda: defer.ensureDeferred(main()).addBoth(lambda _: reactor.stop()))
reactor.run()
"""


@pytest.mark.parametrize(
    "group_range, expected",
    [("0 2147483647", "RESULT L3OK dgram"), ("1 0", "RESULT L3ERR dgram ICMP needs CAP_NET_RAW")],
)
def test_icmp_without_cap_net_raw_uses_ping_sockets_where_allowed(group_range: str, expected: str) -> None:
    with namespace() as ns:
        # ping_group_range is per namespace: set it in the test's own namespace only.
        subprocess.run(
            ["ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv4.ping_group_range={group_range}"], check=True
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        r = subprocess.run(
            ["setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw", sys.executable, "-c", ICMP_SCRIPT, ns],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
    assert expected in r.stdout, (r.stdout, r.stderr)


@pytest_twisted.ensureDeferred
async def test_dns_and_exec_checks_inside_the_namespace(tmp_path: Any) -> None:
    from twisted.internet.protocol import DatagramProtocol

    from maglev.config import DnsParams, ExecParams

    class Answer(DatagramProtocol):
        def datagramReceived(self, q: bytes, addr: Any) -> None:  # a canned A answer, our id and question
            assert self.transport is not None
            flags = b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00"
            record = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x7f\x00\x00\x01"
            self.transport.write(q[:2] + flags + q[12:] + record, addr)

    with namespace() as ns:
        udp = Netns(ns).call(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        udp.bind(("127.0.0.1", 0))
        udp.setblocking(False)
        port = udp.getsockname()[1]
        listening = reactor().adoptDatagramPort(udp.fileno(), socket.AF_INET, Answer())
        udp.close()
        seen = tmp_path / "netns"
        prog = tmp_path / "where"
        prog.write_text(f"#!/bin/sh\nreadlink /proc/self/ns/net > {seen}\n")
        prog.chmod(0o755)
        inside, outside = ProbeFactory(reactor(), ns), ProbeFactory(reactor())
        try:
            b = Backend("b0", ipaddress.ip_address("127.0.0.1"), "hc")
            dns_hc = HealthCheck("hc", CheckType.DNS, port=port, timeout=1.0, params=DnsParams(query="x.example."))
            r = await run(inside.probe_for(b, dns_hc))
            assert (r.ok, r.code) == (True, "L7OK"), r
            r = await run(outside.probe_for(b, dns_hc))
            assert (r.ok, r.code) == (False, "L4CON"), "nothing answers on that port out here"
            exec_hc = HealthCheck("hc", CheckType.EXEC, timeout=5.0, params=ExecParams(command=(str(prog),)))
            r = await run(inside.probe_for(b, exec_hc))
            assert (r.ok, r.code) == (True, "PROCOK"), r
            assert seen.read_text().strip() == f"net:[{os.stat(f'/run/netns/{ns}').st_ino}]", "run inside it"
        finally:
            inside.close()
            outside.close()
            await listening.stopListening()
