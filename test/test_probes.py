"""Probes against real servers on loopback, on the real (asyncio) reactor."""

from __future__ import annotations

import ipaddress
import os
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred

from maglev.config import Backend, CheckType, HealthCheck, HttpParams, IcmpParams, StatusRange, TcpParams
from maglev.health.probes import ProbeFactory, run
from maglev.health.probes.rawhttp import USER_AGENT
from maglev.health.state import ProbeResult

from .servers import (
    Behaviour,
    BlackHole,
    connecting_to,
    http_server,
    https_server,
    port_of,
    refused_port,
    stop,
    tcp_server,
)

pytestmark = pytest.mark.slow


def reactor() -> Any:
    from twisted.internet import reactor as r

    return r


def backend(address: str = "127.0.0.1") -> Backend:
    return Backend("b0", ipaddress.ip_address(address), "hc")


async def probe(hc: HealthCheck, address: str = "127.0.0.1", factory: ProbeFactory | None = None) -> ProbeResult:
    f = factory or ProbeFactory(reactor())
    try:
        result: ProbeResult = await run(f.probe_for(backend(address), hc))
    finally:
        if factory is None:
            f.close()
    return result


def http(port: int, timeout: float = 1.0, kind: CheckType = CheckType.HTTP, **params: Any) -> HealthCheck:
    return HealthCheck("hc", kind, port=port, timeout=timeout, params=HttpParams(**params))


def tcp(port: int, timeout: float = 1.0, **params: Any) -> HealthCheck:
    return HealthCheck("hc", CheckType.TCP, port=port, timeout=timeout, params=TcpParams(**params))


# --- HTTP ------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_http_ok_with_host_headers_and_user_agent() -> None:
    b = Behaviour()
    port = http_server(reactor(), b)
    number = port_of(port)
    try:
        hc = http(number, path="/healthz?x=1", host="www.example.com", headers=(("X-Check", "maglev"),))
        r = await probe(hc)
    finally:
        await stop(port)
    assert (r.ok, r.code, r.detail) == (True, "L7OK", "HTTP 200")
    req = b.requests[0]
    assert req["path"] == b"/healthz?x=1"
    assert req["host"] == f"www.example.com:{number}"
    assert req["user-agent"] == USER_AGENT and "vpp-maglev/0.1.0" in USER_AGENT and "+https://" in USER_AGENT
    assert req["headers"][b"X-Check"] == [b"maglev"]


@pytest.mark.parametrize(
    "status, expect, ok, code",
    [
        (200, (StatusRange(200, 399),), True, "L7OK"),
        (302, (StatusRange(200, 399),), True, "L7OK"),
        (503, (StatusRange(200, 399),), False, "L7STS"),
        (204, (StatusRange(200, 200), StatusRange(204, 204)), True, "L7OK"),
        (200, (StatusRange(204, 204),), False, "L7STS"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_http_status(status: int, expect: tuple[StatusRange, ...], ok: bool, code: str) -> None:
    port = http_server(reactor(), Behaviour(status=status, body=b""))
    try:
        r = await probe(http(port_of(port), expect_status=expect))
    finally:
        await stop(port)
    assert (r.ok, r.code) == (ok, code), r


@pytest.mark.parametrize(
    "body, pattern, ok, code",
    [
        (b"status: ok\n", "ok$", True, "L7OK"),
        (b"status: degraded\n", "ok", False, "L7RSP"),
        (b"x" * 200_000 + b"ok", "ok", False, "L7RSP"),  # beyond the 64 KiB read limit
        (b"x" * 30_000 + b"ok", "ok", True, "L7OK"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_http_expect_body(body: bytes, pattern: str, ok: bool, code: str) -> None:
    port = http_server(reactor(), Behaviour(body=body))
    try:
        r = await probe(http(port_of(port), expect_body=pattern))
    finally:
        await stop(port)
    assert (r.ok, r.code) == (ok, code), r


@pytest_twisted.ensureDeferred
async def test_http_head_method() -> None:
    b = Behaviour()
    port = http_server(reactor(), b)
    try:
        r = await probe(http(port_of(port), method="HEAD"))
    finally:
        await stop(port)
    assert r.ok and b.requests[0]["method"] == b"HEAD"


@pytest_twisted.ensureDeferred
async def test_http_body_is_not_waited_for() -> None:
    # A body that never ends: only a probe that stops at the headers can pass.
    port = http_server(reactor(), Behaviour(body=b"x" * 1000, endless=True))
    try:
        r = await probe(http(port_of(port), timeout=1.0))
        assert (r.ok, r.code) == (True, "L7OK"), r
        r = await probe(http(port_of(port), timeout=0.3, expect_body="never-there"))
        assert (r.ok, r.code) == (False, "L7TOUT"), r
    finally:
        await stop(port)


@pytest_twisted.ensureDeferred
async def test_http_timeouts_and_refusal() -> None:
    hanging = http_server(reactor(), Behaviour(hang=True))
    slow = http_server(reactor(), Behaviour(delay=2.0))
    hole = BlackHole()
    try:
        r = await probe(http(port_of(hanging), timeout=0.3))
        assert (r.ok, r.code) == (False, "L7TOUT"), r
        r = await probe(http(port_of(slow), timeout=0.3))
        assert (r.ok, r.code) == (False, "L7TOUT"), r
        r = await probe(http(hole.port, timeout=0.3))
        assert (r.ok, r.code) == (False, "L4TOUT"), r
        r = await probe(http(refused_port(), timeout=0.3))
        assert (r.ok, r.code, r.detail) == (False, "L4CON", "connection refused"), r
    finally:
        hole.close()
        await stop(hanging)
        await stop(slow)


@pytest_twisted.ensureDeferred
async def test_https_insecure_sends_sni_and_wraps_tls_once() -> None:
    sni: list[bytes | None] = []
    b = Behaviour()
    port = https_server(reactor(), b, sni)
    try:
        r = await probe(http(port_of(port), kind=CheckType.HTTPS, host="demo.example"))
        assert (r.ok, r.code) == (True, "L7OK"), r
        assert sni == [b"demo.example"]
        assert b.requests[0]["host"] == f"demo.example:{port_of(port)}"
        # Verification on: the self-signed certificate for 'localhost' is refused.
        r = await probe(http(port_of(port), kind=CheckType.HTTPS, host="demo.example", insecure=False))
        assert (r.ok, r.code) == (False, "L6RSP"), r
        assert r.detail.startswith("TLS: certificate"), r
        # Plain HTTP to a TLS port is a response error, not a hang.
        r = await probe(http(port_of(port), timeout=0.5))
        assert not r.ok and r.code in ("L7RSP", "L7TOUT"), r
    finally:
        await stop(port)


@pytest_twisted.ensureDeferred
async def test_https_to_plain_http_never_completes_tls() -> None:
    port = http_server(reactor(), Behaviour())
    try:
        r = await probe(http(port_of(port), kind=CheckType.HTTPS, timeout=0.5))
    finally:
        await stop(port)
    assert (r.ok, r.code) == (False, "L6TOUT"), r


@pytest_twisted.ensureDeferred
async def test_http_ipv6_backend() -> None:
    b = Behaviour()
    port = http_server(reactor(), b, host="::1")
    number = port_of(port)
    try:
        r = await probe(http(number), address="::1")
    finally:
        await stop(port)
    assert r.ok, r
    assert b.requests[0]["host"] == f"[::1]:{number}"


# --- TCP -------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_tcp_connect_refuse_and_black_hole() -> None:
    server = tcp_server(reactor())
    hole = BlackHole()
    try:
        r = await probe(tcp(port_of(server)))
        assert (r.ok, r.code) == (True, "L4OK"), r
        r = await probe(tcp(refused_port()))
        assert (r.ok, r.code, r.detail) == (False, "L4CON", "connection refused"), r
        r = await probe(tcp(hole.port, timeout=0.3))
        assert (r.ok, r.code) == (False, "L4TOUT"), r
    finally:
        hole.close()
        await stop(server)


@pytest_twisted.ensureDeferred
async def test_tcp_send_expect() -> None:
    ssh = tcp_server(reactor(), greeting=b"SSH-2.0-OpenSSH_9.2\r\n")
    silent = tcp_server(reactor())
    try:
        r = await probe(tcp(port_of(ssh), expect=r"^SSH-2\.0-"))
        assert (r.ok, r.code) == (True, "L7OK"), r
        r = await probe(tcp(port_of(ssh), expect=r"^HTTP/"))
        assert (r.ok, r.code) == (False, "L7TOUT"), r  # the greeting arrived but never matched
        r = await probe(tcp(port_of(silent), timeout=0.3, send="PING\r\n", expect="PONG"))
        assert (r.ok, r.code) == (False, "L7TOUT"), r
        r = await probe(tcp(port_of(silent), send="hello\r\n"))
        assert (r.ok, r.code) == (True, "L4OK"), r
    finally:
        await stop(ssh)
        await stop(silent)


@pytest_twisted.ensureDeferred
async def test_tcp_ipv6_and_source_address() -> None:
    server = tcp_server(reactor(), host="::1")
    try:
        hc = HealthCheck("hc", CheckType.TCP, port=port_of(server), probe_ipv6_src=ipaddress.IPv6Address("::1"))
        r = await probe(hc, address="::1")
        assert r.ok, r
        bad = HealthCheck(
            "hc", CheckType.TCP, port=port_of(server), probe_ipv6_src=ipaddress.IPv6Address("2001:db8::99")
        )
        r = await probe(bad, address="::1")
        assert (r.ok, r.code) == (False, "L4CON") and "assign" in r.detail, r
    finally:
        await stop(server)


def test_a_probe_that_raises_fails_with_an_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in a probe is a failed result (and a logged traceback), never a stuck backend."""
    factory = ProbeFactory(reactor())

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(factory.tcp, "start", broken)
    monkeypatch.setattr(factory.connect, "start", broken)
    monkeypatch.setattr(factory.pingers, "get", broken)
    results: list[ProbeResult] = []
    try:
        for hc in (tcp(80), tcp(80, send="x"), http(80), icmp()):
            factory.probe_for(backend(), hc).start(results.append)
    finally:
        factory.close()
    assert [(r.ok, r.code, r.detail) for r in results] == [(False, "L4CON", "internal error: bug")] * 4


def tcp_states(port: int) -> list[str]:
    """States of this host's TCP sockets with ``port`` at either end (from /proc/net/tcp)."""
    names = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "06": "TIME_WAIT", "08": "CLOSE_WAIT"}
    states = []
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        local, remote, state = line.split()[1:4]
        if state != "0A" and port in (int(local.split(":")[1], 16), int(remote.split(":")[1], 16)):
            states.append(names.get(state, state))
    return states


@pytest_twisted.ensureDeferred
async def test_one_socket_serves_probe_after_probe_whatever_the_outcome() -> None:
    """Finished probes give their socket back (disconnected, not closed): one socket serves
    every outcome in turn, each probe still reaches the backend afresh, and nothing is left
    connected, half-open or in TIME_WAIT on either side."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    greeter = tcp_server(reactor(), greeting=b"SSH-2.0-x\r\n")
    hole = BlackHole()
    factory = ProbeFactory(reactor())
    checks = [
        (tcp(port), (True, "L4OK")),
        (tcp(refused_port()), (False, "L4CON")),
        (tcp(port), (True, "L4OK")),
        (tcp(hole.port, timeout=0.2), (False, "L4TOUT")),
        (tcp(port_of(greeter), expect="^SSH-"), (True, "L7OK")),
        (tcp(port), (True, "L4OK")),
    ]
    try:
        for hc, expected in checks:
            r = await run(factory.probe_for(backend(), hc))
            assert (r.ok, r.code) == expected, (hc, r)
        # connect checks run on the compiled engine, send/expect on the Python multiplexer
        assert (factory.connect.counts()["sockets_opened"], factory.tcp.sockets_opened) == (1, 1)
        with pytest.raises(BlockingIOError):
            listener.accept()  # connect checks reset before the handshake completes
        assert tcp_states(port) == [], "a connect check left a connection behind"
    finally:
        factory.close()
        hole.close()
        listener.close()
        await stop(greeter)


@pytest_twisted.ensureDeferred
async def test_a_reused_socket_keeps_its_source_address() -> None:
    from twisted.internet.protocol import Factory, Protocol

    seen: list[str] = []

    class Greeter(Protocol):
        def connectionMade(self) -> None:
            assert self.transport is not None
            seen.append(self.transport.getPeer().host)  # type: ignore[attr-defined]
            self.transport.write(b"hi\r\n")

    listener = reactor().listenTCP(0, Factory.forProtocol(Greeter), interface="127.0.0.1")
    factory = ProbeFactory(reactor())
    hc = HealthCheck(
        "hc", CheckType.TCP, port=port_of(listener), probe_ipv4_src=ipaddress.IPv4Address("127.0.0.3"),
        params=TcpParams(expect="^hi"),
    )  # fmt: skip
    try:
        for _ in range(3):
            r = await run(factory.probe_for(backend(), hc))
            assert (r.ok, r.code) == (True, "L7OK"), r
        assert seen == ["127.0.0.3"] * 3
        assert factory.tcp.sockets_opened == 1
    finally:
        factory.close()
        await stop(listener)


def syn_sent_sources(port: int) -> list[str]:
    """Local addresses of this host's IPv4 sockets connecting to ``port`` (SYN_SENT)."""
    import socket
    import struct

    sources = []
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        local, remote, state = line.split()[1:4]
        if state == "02" and int(remote.split(":")[1], 16) == port:
            sources.append(socket.inet_ntoa(struct.pack("<I", int(local.split(":")[0], 16))))
    return sources


@pytest_twisted.ensureDeferred
async def test_a_reused_connect_check_socket_keeps_its_source_address() -> None:
    """Connect checks never let the backend accept, so the source address is read from the
    kernel's table while each probe is still trying to connect."""
    hole = BlackHole()
    factory = ProbeFactory(reactor())
    hc = HealthCheck(
        "hc", CheckType.TCP, port=hole.port, timeout=0.05, probe_ipv4_src=ipaddress.IPv4Address("127.0.0.3")
    )
    try:
        for _ in range(3):
            d = run(factory.probe_for(backend(), hc))
            assert syn_sent_sources(hole.port).count("127.0.0.3") == 1  # beside the hole's fillers
            r = await d
            assert (r.ok, r.code, r.detail) == (False, "L4TOUT", "connect timeout"), r
        assert factory.connect.counts()["sockets_opened"] == 1
    finally:
        factory.close()
        hole.close()


@pytest_twisted.ensureDeferred
async def test_cancelling_a_probe_closes_its_socket() -> None:
    hole = BlackHole()  # its fillers beyond the backlog are connecting too, and stay
    factory = ProbeFactory(reactor())
    try:
        fillers = connecting_to(hole.port)
        d = run(factory.probe_for(backend(), tcp(hole.port, timeout=5.0)))
        probing = connecting_to(hole.port) - fillers
        assert len(probing) == 1, "the probe's own socket, connecting"
        d.cancel()
        failures: list[Any] = []
        d.addErrback(failures.append)
        assert failures and failures[0].check(Exception)
        assert connecting_to(hole.port) == fillers, "the probe's socket is closed, nothing else"
    finally:
        hole.close()
        factory.close()


# --- ICMP ------------------------------------------------------------------------------


def icmp(timeout: float = 1.0, size: int = 56) -> HealthCheck:
    return HealthCheck("hc", CheckType.ICMP, timeout=timeout, params=IcmpParams(payload_size=size))


@pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP sockets need root (CAP_NET_RAW)")
@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
@pytest_twisted.ensureDeferred
async def test_icmp_echo(address: str) -> None:
    factory = ProbeFactory(reactor())
    try:
        results = [await probe(icmp(size=size), address, factory) for size in (0, 56, 1400)]
        assert [(r.ok, r.code) for r in results] == [(True, "L3OK")] * 3, results
        pinger = factory.pingers.get(6 if ":" in address else 4, None, None)
        assert pinger.raw
    finally:
        factory.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP sockets need root (CAP_NET_RAW)")
@pytest_twisted.ensureDeferred
async def test_icmp_many_in_parallel_are_matched() -> None:
    from twisted.internet.defer import gatherResults

    factory = ProbeFactory(reactor())
    try:
        probes = [run(factory.probe_for(backend(f"127.0.0.{i}"), icmp())) for i in range(1, 41)]
        results = await gatherResults(probes)
        assert all(r.ok for r in results), [r for r in results if not r.ok]
    finally:
        factory.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP sockets need root (CAP_NET_RAW)")
@pytest.mark.parametrize("family", [4, 6])
@pytest_twisted.ensureDeferred
async def test_icmp_a_burst_to_many_loopback_addresses_gets_every_reply(family: int) -> None:
    """Loopback loses nothing: 2,000 echo requests at once to 250 addresses (IPv6: ::1, the
    only loopback address) must all be answered. On loopback every request also comes back
    in to a raw socket: without the type filter and the larger buffer, bursts overflowed it."""
    from twisted.internet.defer import gatherResults

    factory = ProbeFactory(reactor())
    try:
        where = [f"127.0.{i // 250}.{i % 250 + 1}" if family == 4 else "::1" for i in range(2000)]
        results = await gatherResults([run(factory.probe_for(backend(a), icmp(timeout=5.0))) for a in where])
    finally:
        factory.close()
    lost = [r for r in results if not r.ok]
    assert not lost, f"{len(lost)} of 2000 lost: {lost[:3]}"


@pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP sockets need root (CAP_NET_RAW)")
@pytest_twisted.ensureDeferred
async def test_icmp_a_reply_already_in_wins_over_its_timeout() -> None:
    """A busy reactor can run a probe's timeout before it reads the socket: the replies that
    are in are read first. Here the reactor never reads the pinger, so only that can find them."""
    from twisted.internet.defer import gatherResults

    factory = ProbeFactory(reactor())
    try:
        pinger = factory.pingers.get(4, None, None)
        reactor().removeReader(pinger)
        probes = [run(factory.probe_for(backend(f"127.0.3.{i}"), icmp(timeout=0.2))) for i in range(1, 51)]
        results = await gatherResults(probes)
    finally:
        factory.close()
    assert [(r.ok, r.code) for r in results] == [(True, "L3OK")] * 50


@pytest_twisted.ensureDeferred
async def test_a_busy_reactor_does_not_turn_answers_into_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reactor is stalled past the probes' timeout (a big sync's results, say) while the
    connections completed in the kernel, more of them than one poll returns: every answer
    that is ready wins over its timeout."""
    import socket
    import time

    from maglev.health.probes import tcp as tcpmod
    from maglev.timers import TimerQueue

    monkeypatch.setattr(tcpmod, "MAX_EVENTS", 2)  # five ready sockets need three polls
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    mux = tcpmod.TcpMux(reactor(), TimerQueue(reactor()))
    results: list[ProbeResult] = []
    all_in = Deferred[None]()

    def done(r: ProbeResult) -> None:
        results.append(r)
        if len(results) == 5:
            all_in.callback(None)

    try:
        for _ in range(5):
            mux.start("127.0.0.1", listener.getsockname()[1], 0.2, done)
        time.sleep(0.5)  # the stall itself (the reactor cannot run meanwhile), not a wait for an event
        await all_in.addTimeout(10, reactor())
    finally:
        mux.close()
        listener.close()
    assert [(r.ok, r.code) for r in results] == [(True, "L4OK")] * 5
