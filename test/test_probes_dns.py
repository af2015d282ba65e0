"""The dns check against a real DNS responder on loopback (UDP and TCP, dnspython's messages)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest
import pytest_twisted
from twisted.internet.protocol import DatagramProtocol, Factory, Protocol

from maglev.config import CheckType, DnsParams, HealthCheck, load_config
from maglev.config.errors import ConfigError
from maglev.health.state import ProbeResult

from .probing import probe_once
from .servers import refused_port, stop

pytestmark = pytest.mark.slow

Answer = Callable[[dns.message.Message, bool], list[bytes] | None]  # (query, over TCP) -> datagrams to send


def reactor() -> Any:
    from twisted.internet import reactor as r

    return r


def records(*addresses: str, rcode: dns.rcode.Rcode = dns.rcode.NOERROR) -> Answer:
    def answer(q: dns.message.Message, tcp: bool) -> list[bytes]:
        r = dns.message.make_response(q)
        r.set_rcode(rcode)
        if addresses:
            r.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "A", *addresses))
        return [r.to_wire()]

    return answer


class Responder:
    """UDP and TCP on one loopback port; ``answer`` decides what each query gets."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.queries: list[tuple[str, bool]] = []  # (qname, over TCP)
        responder = self

        class Udp(DatagramProtocol):
            def datagramReceived(self, data: bytes, addr: Any) -> None:
                q = dns.message.from_wire(data)
                responder.queries.append((q.question[0].name.to_text(), False))
                for out in responder.answer(q, False) or []:
                    assert self.transport is not None
                    self.transport.write(out, addr)

        class Tcp(Protocol):
            def dataReceived(self, data: bytes) -> None:
                q = dns.message.from_wire(data[2:])
                responder.queries.append((q.question[0].name.to_text(), True))
                for out in responder.answer(q, True) or []:
                    assert self.transport is not None
                    self.transport.write(struct.pack(">H", len(out)) + out)

        self.udp = reactor().listenUDP(0, Udp(), interface="127.0.0.1")
        self.port = self.udp.getHost().port
        self.tcp = reactor().listenTCP(self.port, Factory.forProtocol(Tcp), interface="127.0.0.1")

    async def close(self) -> None:
        await self.udp.stopListening()
        await stop(self.tcp)


def check(port: int, timeout: float = 1.0, **params: Any) -> HealthCheck:
    params_ = DnsParams(query="www.example.", **params)
    return HealthCheck("hc", CheckType.DNS, port=port, timeout=timeout, params=params_)


async def probe(hc: HealthCheck) -> ProbeResult:
    return await probe_once(hc)


def wrong_id_first(q: dns.message.Message, tcp: bool) -> list[bytes]:
    spoof = dns.message.make_response(q)
    spoof.id = (q.id + 1) & 0xFFFF
    spoof.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "A", "203.0.113.66"))
    return [spoof.to_wire(), *(records("192.0.2.10")(q, tcp) or [])]


def truncated_over_udp(q: dns.message.Message, tcp: bool) -> list[bytes]:
    if tcp:
        return records("192.0.2.10", "192.0.2.11")(q, tcp) or []
    r = dns.message.make_response(q)
    r.flags |= dns.flags.TC
    return [r.to_wire()]


@pytest.mark.parametrize(
    ("answer", "params", "ok", "code", "detail"),
    [
        (records("192.0.2.10"), {}, True, "L7OK", "NOERROR, 1 A"),
        (records("192.0.2.10"), {"expect": "192.0.2.10"}, True, "L7OK", "NOERROR, A 192.0.2.10"),
        (records("192.0.2.10"), {"expect": "192.0.2.99"}, False, "L7RSP", "no A record with 192.0.2.99"),
        (records(), {}, True, "L7OK", "NOERROR, 0 A"),  # no answer, nothing expected: the rcode is enough
        (records(), {"expect": "192.0.2.10"}, False, "L7RSP", "NOERROR with no A record"),
        (records(rcode=dns.rcode.SERVFAIL), {}, False, "L7STS", "rcode SERVFAIL (expected NOERROR)"),
        (records(rcode=dns.rcode.NXDOMAIN), {}, False, "L7STS", "rcode NXDOMAIN"),
        (records(rcode=dns.rcode.NXDOMAIN), {"rcode": "NXDOMAIN"}, True, "L7OK", "NXDOMAIN"),
        (wrong_id_first, {"expect": "192.0.2.10"}, True, "L7OK", "A 192.0.2.10"),  # the spoof is ignored
        (truncated_over_udp, {"expect": "192.0.2.11"}, True, "L7OK", "A 192.0.2.11"),  # again over TCP
        (records("192.0.2.10"), {"transport": "tcp"}, True, "L7OK", "NOERROR, 1 A"),
        (lambda q, tcp: [b"\x12"], {}, False, "L7RSP", "malformed answer"),
        (lambda q, tcp: [struct.pack(">H", q.id) + b"\x81\x80garbage"], {}, False, "L7RSP", "malformed answer"),
        (lambda q, tcp: None, {}, False, "L7TOUT", "no answer before the timeout"),
        (lambda q, tcp: wrong_id_first(q, tcp)[:1], {}, False, "L7TOUT", "(1 not ours ignored)"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_dns_check(answer: Answer, params: dict[str, Any], ok: bool, code: str, detail: str) -> None:
    r = Responder(answer)
    try:
        result = await probe(check(r.port, timeout=0.5, **params))
    finally:
        await r.close()
    assert (result.ok, result.code) == (ok, code) and detail in result.detail, result
    assert r.queries and r.queries[0][0] == "www.example."


@pytest_twisted.ensureDeferred
async def test_dns_check_transports_over_the_wire() -> None:
    r = Responder(truncated_over_udp)
    try:
        await probe(check(r.port))
        assert r.queries == [("www.example.", False), ("www.example.", True)], "UDP, then TCP on truncation"
        r.queries.clear()
        await probe(check(r.port, transport="tcp"))
        assert r.queries == [("www.example.", True)], "transport: tcp asks over TCP only"
    finally:
        await r.close()


@pytest_twisted.ensureDeferred
async def test_dns_check_refused() -> None:
    port = refused_port()
    udp = await probe(check(port))
    assert (udp.ok, udp.code, udp.detail) == (False, "L4CON", "port unreachable")
    tcp = await probe(check(port, transport="tcp"))
    assert (tcp.ok, tcp.code, tcp.detail) == (False, "L4CON", "TCP connection refused")


BASE = """
maglev:
  healthchecks:
    d: {type: dns, params: %s}
"""


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ("{qtype: AAAA}", "maglev.healthchecks.d.params.query: required for dns checks"),
        ("{query: www.example.com, qtype: BOGUS}", "unknown record type 'BOGUS'"),
        ("{query: www.example.com, rcode: FINE}", "unknown rcode 'FINE'"),
        ("{query: www.example.com, transport: quic}", "must be udp or tcp, got 'quic'"),
        ('{query: "a..b"}', "is not a DNS name"),
        ("{query: x, bogus: 1}", "maglev.healthchecks.d.params.bogus: unknown key"),
    ],
)
def test_dns_config_errors_name_the_problem(params: str, error: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(BASE % params)
    assert error in str(e.value)


def test_dns_config_defaults() -> None:
    cfg = load_config(BASE % "{query: www.example.com, qtype: aaaa}")
    hc = cfg.healthchecks["d"]
    assert hc.port is None and hc.params == DnsParams(query="www.example.com", qtype="AAAA")


@pytest_twisted.ensureDeferred
async def test_one_socket_serves_probe_after_probe_and_a_late_answer_is_not_taken() -> None:
    from maglev.health.probes.dnscheck import DnsProber

    late: list[bytes] = []

    def slow_first(q: dns.message.Message, tcp: bool) -> list[bytes]:
        if not late:  # the first query is answered only when the second one comes
            late.append(records("192.0.2.66")(q, tcp)[0])  # type: ignore[index]
            return []
        return [late[0], *(records("192.0.2.10")(q, tcp) or [])]

    r = Responder(slow_first)
    prober = DnsProber(reactor(), "127.0.0.1", check(r.port, timeout=0.3, expect="192.0.2.10"), None)
    try:
        first = await prober.probe()
        assert (first.ok, first.code) == (False, "L7TOUT")
        sock = prober.udp
        second = await prober.probe()
        assert (second.ok, second.code) == (True, "L7OK"), "the first query's late answer was ignored"
        assert prober.udp is sock, "the same socket"
    finally:
        prober.close()
        await r.close()
    assert prober.udp is None
