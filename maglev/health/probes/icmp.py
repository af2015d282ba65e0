"""ICMP echo probes for IPv4 and IPv6 on one socket per (family, netns, source).

A raw socket (CAP_NET_RAW) sees every ICMP packet of its namespace, so replies
are matched on identifier, sequence, source address and payload. Without
CAP_NET_RAW, unprivileged ICMP datagram sockets are used where
``net.ipv4.ping_group_range`` allows (the kernel then owns the identifier).
Codes: L3OK, L3TOUT (no reply), L3UNR (an ICMP unreachable came back),
L3ERR (the echo could not be sent, or no ICMP socket can be had).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import random
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReadDescriptor
from twisted.python.failure import Failure
from zope.interface import implementer

from ...log import Logger
from ...reactor import watch_reader
from ...timers import TimerId, TimerQueue
from ..netns import Netns, NetnsError
from ..state import ProbeResult
from .tcp import make_socket

if TYPE_CHECKING:
    from ...reactor import Reactor

ECHO_REQUEST = {4: 8, 6: 128}
ECHO_REPLY = {4: 0, 6: 129}
UNREACHABLE = {4: 3, 6: 1}
_HDR = struct.Struct("!BBHHH")
MAX_READS = 256  # per doRead, so a flood of ICMP cannot starve the reactor
RCVBUF = 4 * 1024 * 1024  # a burst of replies (and, on a raw socket, every other ICMP) must fit
SOL_RAW, ICMP_FILTER, ICMP6_FILTER = 255, 1, 1  # linux/icmp.h, linux/icmpv6.h


def only_replies(sock: socket.socket, family: int) -> None:
    """Let a raw socket see only echo replies and unreachables: not our own echo requests
    (on loopback every request comes back in too), nor the host's other ICMP."""
    wanted = (ECHO_REPLY[family], UNREACHABLE[family])
    if family == 4:
        blocked = 0xFFFFFFFF & ~sum(1 << t for t in wanted)  # a bit set: that type is dropped
        sock.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("I", blocked))
    else:
        words = [0xFFFFFFFF] * 8  # 256 types, a bit set: blocked (ICMP6_FILTER_SETBLOCKALL)
        for t in wanted:
            words[t >> 5] &= ~(1 << (t & 31))
        sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, struct.pack("8I", *words))


def big_receive_buffer(sock: socket.socket) -> None:
    for option in (getattr(socket, "SO_RCVBUFFORCE", 33), socket.SO_RCVBUF):  # FORCE: past rmem_max, as root
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, RCVBUF)
            return
        except OSError:
            continue


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    result: int = ~total & 0xFFFF
    return result


@dataclass
class _Pending:
    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    payload: bytes
    started: float
    result: Deferred[ProbeResult]
    timer: TimerId | None = field(default=None)


@implementer(IReadDescriptor)
class Pinger:
    log = Logger()

    def __init__(
        self,
        reactor: Reactor,
        family: int,
        netns: Netns | None = None,
        source: str | None = None,
        timers: TimerQueue | None = None,
    ) -> None:
        self.reactor = reactor
        self.timers = timers if timers is not None else TimerQueue(reactor)
        self.family = family
        self.ident = random.randrange(1, 0xFFFF)
        self._seq = random.randrange(0, 0xFFFF)
        self._pending: dict[int, _Pending] = {}
        self._sock: socket.socket | None = None
        self._unwatch: Callable[[], None] | None = None
        self.raw = True
        self.error: str | None = None
        af = socket.AF_INET6 if family == 6 else socket.AF_INET
        proto = socket.IPPROTO_ICMPV6 if family == 6 else socket.IPPROTO_ICMP
        try:
            try:
                self._sock = make_socket(af, socket.SOCK_RAW, proto, netns)
            except PermissionError:
                self.raw = False
                self._sock = make_socket(af, socket.SOCK_DGRAM, proto, netns)
            self._sock.setblocking(False)
            if self.raw:
                try:
                    only_replies(self._sock, family)
                except OSError:  # a kernel without the filter: everything is read and sorted here
                    pass
            big_receive_buffer(self._sock)
            if source:
                self._sock.bind((source, 0))
        except NetnsError as e:
            self.error = str(e)
        except OSError as e:
            if e.errno in (errno.EPERM, errno.EACCES):
                self.error = f"ICMP needs CAP_NET_RAW, or net.ipv4.ping_group_range including group {os.getgid()}"
            else:
                self.error = f"ICMP socket: {e.strerror}"
            self.log.error("cannot open an ICMPv{family} socket: {error}", family=family, error=self.error)
        if self._sock is not None and self.error is not None:
            self._sock.close()
            self._sock = None
        if self._sock is not None:
            self._unwatch = watch_reader(reactor, self, self.log)

    # --- sending ----------------------------------------------------------------------
    def ping(self, address: str, timeout: float, payload_size: int = 56) -> Deferred[ProbeResult]:
        started = self.reactor.seconds()
        d: Deferred[ProbeResult] = Deferred()
        if self._sock is None:
            code = "L4CON" if self.error and self.error.startswith("enter netns") else "L3ERR"
            d.callback(ProbeResult(False, code, self.error or "pinger closed", 0.0))
            return d
        seq = self._next_seq()
        payload = struct.pack("!HH", self.ident, seq) + os.urandom(max(payload_size - 4, 0))
        payload = payload[:payload_size]
        kind = ECHO_REQUEST[self.family]
        header = _HDR.pack(kind, 0, 0, self.ident, seq)
        if self.family == 4:
            header = _HDR.pack(kind, 0, checksum(header + payload), self.ident, seq)
        try:
            self._sock.sendto(header + payload, (address, 0))
        except OSError as e:
            d.callback(ProbeResult(False, "L3ERR", f"send: {(e.strerror or str(e)).lower()}", 0.0))
            return d
        pending = _Pending(ipaddress.ip_address(address), payload, started, d)
        d.addBoth(self._forget, seq, pending)
        pending.timer = self.timers.call_later(timeout, self._timed_out, seq, pending)
        self._pending[seq] = pending
        return d

    def _next_seq(self) -> int:
        for _ in range(0x10000):
            self._seq = (self._seq + 1) & 0xFFFF
            if self._seq not in self._pending:
                return self._seq
        raise RuntimeError("65536 echo requests in flight")

    def _forget(self, result: Any, seq: int, pending: _Pending) -> Any:
        if self._pending.get(seq) is pending:
            del self._pending[seq]
        if pending.timer is not None:
            self.timers.cancel(pending.timer)
        return result

    def _timed_out(self, seq: int, pending: _Pending) -> None:
        pending.timer = None
        if not pending.result.called:
            # A busy reactor may run this timer before reading a reply that is already in:
            # what is in the socket is read first, as the TCP path does.
            self.doRead()
        if not pending.result.called:
            elapsed = self.reactor.seconds() - pending.started
            pending.result.callback(ProbeResult(False, "L3TOUT", "no echo reply before the timeout", elapsed))

    # --- receiving --------------------------------------------------------------------
    def fileno(self) -> int:
        return self._sock.fileno() if self._sock is not None else -1

    def logPrefix(self) -> str:
        return f"Pinger(v{self.family})"

    def connectionLost(self, reason: Failure) -> None:
        self.close()

    def doRead(self) -> None:
        done: list[tuple[_Pending, ProbeResult]] = []
        now = self.reactor.seconds()
        for _ in range(MAX_READS):
            if self._sock is None:
                break
            try:
                data, peer = self._sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            self._parse(data, peer[0], now, done)
        # Fire after reading: a callback may close this pinger.
        for pending, result in done:
            if not pending.result.called:
                pending.result.callback(result)

    def _parse(self, data: bytes, peer: str, now: float, done: list[tuple[_Pending, ProbeResult]]) -> None:
        if self.family == 4 and self.raw:
            if len(data) < 20:
                return
            data = data[(data[0] & 0x0F) * 4 :]
        if len(data) < 8:
            return
        kind, code, _, ident, seq = _HDR.unpack_from(data)
        if kind == ECHO_REPLY[self.family]:
            if self.raw and ident != self.ident:
                return  # another process's ping
            pending = self._pending.get(seq)
            if pending is None or pending.address != _ip(peer):
                return
            elapsed = now - pending.started
            if data[8:] != pending.payload:
                done.append((pending, ProbeResult(False, "L3ERR", "echo reply payload differs", elapsed)))
            else:
                done.append((pending, ProbeResult(True, "L3OK", f"echo reply in {elapsed * 1000:.1f}ms", elapsed)))
        elif kind == UNREACHABLE[self.family]:
            inner = data[8:]
            if self.family == 4:
                if len(inner) < 20:
                    return
                inner = inner[(inner[0] & 0x0F) * 4 :]
            else:
                inner = inner[40:]
            if len(inner) < 8:
                return
            ikind, _, _, iident, iseq = _HDR.unpack_from(inner)
            pending = self._pending.get(iseq)
            if ikind != ECHO_REQUEST[self.family] or pending is None or (self.raw and iident != self.ident):
                return
            elapsed = now - pending.started
            done.append(
                (pending, ProbeResult(False, "L3UNR", f"destination unreachable (code {code}) from {peer}", elapsed))
            )

    def close(self) -> None:
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        for pending in list(self._pending.values()):
            if not pending.result.called:
                pending.result.callback(ProbeResult(False, "L3ERR", "pinger closed", 0.0))
        self._pending.clear()


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text.split("%", 1)[0])


class Pingers:
    """One Pinger per (family, netns, source), created on first use."""

    def __init__(self, reactor: Reactor, timers: TimerQueue | None = None) -> None:
        self.reactor = reactor
        self.timers = timers
        self._pingers: dict[tuple[int, str | None, str | None], Pinger] = {}

    def get(self, family: int, netns: Netns | None, source: str | None) -> Pinger:
        key = (family, netns.name if netns else None, source)
        pinger = self._pingers.get(key)
        if pinger is None or (pinger.error is not None and pinger.error.startswith("enter netns")):
            if pinger is not None:
                pinger.close()
            pinger = Pinger(self.reactor, family, netns, source, self.timers)
            self._pingers[key] = pinger
        return pinger

    def close(self) -> None:
        for pinger in self._pingers.values():
            pinger.close()
        self._pingers.clear()
