"""The ``dns`` check: one query to the backend, judged on its RCODE and, optionally, a record.

The message is built and parsed by dnspython; the transport is Twisted's. UDP first
(the backend's own connected socket, kept between probes, so an ICMP port unreachable
comes back as refused), and TCP when
the answer is truncated or ``transport: tcp`` asks for it (two-byte length framing,
RFC 1035 4.2.2). An answer whose id or question is not ours is ignored, as a resolver
ignores it (a spoof or a late answer), and the probe waits on; the timeout says how
many were. Results:

- ``L7OK``: the expected RCODE, and the expected record if one is configured;
- ``L7STS``: another RCODE (SERVFAIL, NXDOMAIN, ...);
- ``L7RSP``: a malformed answer, or the expected record missing from it;
- ``L7TOUT``: no answer of ours before the timeout;
- ``L4CON``: refused (ICMP port unreachable, or TCP refused); ``L4TOUT``: no TCP connection.
"""

from __future__ import annotations

import ipaddress
import struct
import time
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
from twisted.internet import error as twisted_error
from twisted.internet.defer import Deferred
from twisted.internet.protocol import DatagramProtocol, Factory, Protocol, connectionDone
from twisted.python.failure import Failure

from ...config import DnsParams, HealthCheck
from ..netns import Netns, backend_endpoint
from ..state import ProbeResult

MAX_UDP = 65535


def verdict(params: DnsParams, answer: dns.message.Message, took: float) -> ProbeResult:
    """What an answer of ours says about the backend."""
    rcode = dns.rcode.to_text(answer.rcode())
    if rcode != params.rcode:
        return ProbeResult(False, "L7STS", f"rcode {rcode} (expected {params.rcode})", took)
    records = [rd for rrset in answer.answer if rrset.rdtype == dns.rdatatype.from_text(params.qtype) for rd in rrset]
    if params.expect is None:
        return ProbeResult(True, "L7OK", f"{rcode}, {len(records)} {params.qtype}", took)
    if not records:
        return ProbeResult(False, "L7RSP", f"{rcode} with no {params.qtype} record (expected {params.expect})", took)
    texts = [rd.to_text() for rd in records]
    if any(_matches(params.expect, t) for t in texts):
        return ProbeResult(True, "L7OK", f"{rcode}, {params.qtype} {params.expect}", took)
    shown = ", ".join(texts[:3]) + (", ..." if len(texts) > 3 else "")
    return ProbeResult(False, "L7RSP", f"no {params.qtype} record with {params.expect} (got {shown})", took)


def _matches(expect: str, text: str) -> bool:
    try:  # an address is compared as an address (2001:db8::1 is 2001:0db8::0001)
        return ipaddress.ip_address(expect) == ipaddress.ip_address(text)
    except ValueError:
        return expect in text


class _Udp(DatagramProtocol):
    """The backend's UDP socket, kept from probe to probe; answers go to the probe in flight."""

    def __init__(self, prober: DnsProber) -> None:
        self.prober = prober

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        probe = self.prober.current
        if probe is not None:
            probe.answered(datagram, tcp=False)

    def connectionRefused(self) -> None:
        probe = self.prober.current
        if probe is not None:
            probe.finish(ProbeResult(False, "L4CON", "port unreachable", probe.took()))


class _Tcp(Protocol):
    def __init__(self, probe: _DnsProbe) -> None:
        self.probe = probe
        self.buffer = b""

    def connectionMade(self) -> None:
        wire = self.probe.wire
        assert self.transport is not None
        self.transport.write(struct.pack(">H", len(wire)) + wire)

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 2:
            (length,) = struct.unpack_from(">H", self.buffer)
            if len(self.buffer) < 2 + length:
                return
            message, self.buffer = self.buffer[2 : 2 + length], self.buffer[2 + length :]
            self.probe.answered(message, tcp=True)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.probe.finish(ProbeResult(False, "L7RSP", "the server closed the TCP connection unanswered", 0.0))


class _DnsProbe:
    """One probe in flight: its query, its sockets, its deadline."""

    def __init__(self, prober: DnsProber) -> None:
        self.prober = prober
        self.params = prober.params
        self.query = dns.message.make_query(self.params.query, self.params.qtype)
        self.wire = self.query.to_wire()
        self.d: Deferred[ProbeResult] = Deferred(lambda _: self.close())
        self.started = time.monotonic()
        self.ignored = 0
        self.tcp_connected = False
        self.tcp: Any = None
        reactor = prober.reactor
        self.timer = reactor.callLater(prober.hc.timeout, self.timed_out)

    def took(self) -> float:
        return time.monotonic() - self.started

    def run(self) -> Deferred[ProbeResult]:
        if self.params.transport == "tcp":
            self.over_tcp()
        else:
            self.over_udp()
        return self.d

    def over_udp(self) -> None:
        p = self.prober
        try:
            udp = p.udp_socket()
            p.current = self
            udp.write(self.wire)
        except Exception as e:  # a netns that cannot be entered, no route, ...
            p.close()  # a fresh socket next time
            self.finish(ProbeResult(False, "L4CON", str(e), self.took()))

    def over_tcp(self) -> None:
        p = self.prober
        timeout = max(p.hc.timeout - self.took(), 0.001)
        ep = backend_endpoint(p.reactor, p.address, p.port, timeout, p.source, p.netns)
        connecting = ep.connect(Factory.forProtocol(lambda: _Tcp(self)))
        connecting.addCallbacks(self._tcp_made, self._tcp_failed)

    def _tcp_made(self, proto: _Tcp) -> None:
        self.tcp_connected = True
        if self.d.called:
            _abort(proto)
        else:
            self.tcp = proto

    def _tcp_failed(self, f: Failure) -> None:
        if f.check(twisted_error.TimeoutError):
            self.finish(ProbeResult(False, "L4TOUT", "no TCP connection before the timeout", self.took()))
        elif f.check(twisted_error.ConnectionRefusedError):
            self.finish(ProbeResult(False, "L4CON", "TCP connection refused", self.took()))
        else:
            self.finish(ProbeResult(False, "L4CON", f.getErrorMessage(), self.took()))

    def answered(self, data: bytes, tcp: bool) -> None:
        if self.d.called:
            return
        try:
            answer = dns.message.from_wire(data)
        except dns.message.ShortHeader:
            self.finish(ProbeResult(False, "L7RSP", "malformed answer: shorter than a DNS header", self.took()))
            return
        except dns.message.Truncated:
            if not tcp:
                self.to_tcp()
                return
            self.finish(ProbeResult(False, "L7RSP", "malformed answer: truncated over TCP", self.took()))
            return
        except dns.exception.DNSException as e:
            if _id_of(data) != self.query.id:
                self.ignored += 1  # not ours: not ours to judge either
                return
            self.finish(ProbeResult(False, "L7RSP", f"malformed answer: {e}", self.took()))
            return
        if not self.query.is_response(answer):
            self.ignored += 1
            return
        if answer.flags & dns.flags.TC and not tcp:
            self.to_tcp()
            return
        self.finish(verdict(self.params, answer, self.took()))

    def to_tcp(self) -> None:
        """A truncated answer over UDP: ask again over TCP (RFC 7766)."""
        if self.prober.current is self:
            self.prober.current = None
        self.over_tcp()

    def timed_out(self) -> None:
        self.timer = None
        if self.params.transport == "tcp" and not self.tcp_connected and self.tcp is None:
            result = ProbeResult(False, "L4TOUT", "no TCP connection before the timeout", self.took())
        else:
            extra = f" ({self.ignored} not ours ignored)" if self.ignored else ""
            result = ProbeResult(False, "L7TOUT", f"no answer before the timeout{extra}", self.took())
        self.finish(result)

    def finish(self, result: ProbeResult) -> None:
        if self.d.called:
            return
        self.close()
        self.d.callback(result)

    def close(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None
        if self.prober.current is self:
            self.prober.current = None
        if self.tcp is not None:
            tcp, self.tcp = self.tcp, None
            _abort(tcp)


def _abort(proto: Protocol) -> None:
    transport: Any = proto.transport
    if transport is not None:
        transport.abortConnection()


def _id_of(data: bytes) -> int | None:
    return struct.unpack_from(">H", data)[0] if len(data) >= 2 else None


class DnsProber:
    """The ``dns`` check of one backend: ``probe()`` runs one query."""

    def __init__(
        self, reactor: Any, address: str, hc: HealthCheck, source: str | None, netns: Netns | None = None
    ) -> None:
        assert isinstance(hc.params, DnsParams)
        self.reactor = reactor
        self.address = address
        self.v6 = ":" in address
        self.port = hc.port or 53
        self.hc = hc
        self.params = hc.params
        self.source = source
        self.netns = netns
        self.udp: Any = None  # the connected UDP socket, made at the first probe, kept until close()
        self.current: _DnsProbe | None = None  # the probe in flight, which the socket's answers go to

    def udp_socket(self) -> Any:
        if self.udp is None:

            def listen() -> Any:
                return self.reactor.listenUDP(0, _Udp(self), interface=self.source or ("::" if self.v6 else ""))

            udp = self.netns.call(listen) if self.netns is not None else listen()
            udp.connect(self.address, self.port)
            self.udp = udp
        return self.udp

    def probe(self) -> Deferred[ProbeResult]:
        return _DnsProbe(self).run()

    def close(self) -> None:
        """Done with (the backend removed, its check changed): its socket goes."""
        udp, self.udp, self.current = self.udp, None, None
        if udp is not None:
            udp.stopListening()


__all__ = ["DnsProber", "verdict"]
