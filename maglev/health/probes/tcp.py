"""TCP connect probe on a raw non-blocking socket driven by the reactor.

Endpoints and protocols cost about five times the CPU of this (see
docs/performance.md); at 10,000 backends a second that matters. One socket,
one reader/writer registration, one timer. The socket closes with RST
(SO_LINGER 0) so the prober never piles up TIME_WAIT.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import struct
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReadWriteDescriptor
from twisted.python.failure import Failure
from zope.interface import implementer

from ..netns import Netns, NetnsError
from ..state import ProbeResult

_LINGER_RST = struct.pack("ii", 1, 0)
MAX_READ = 16384


def make_socket(family: int, kind: int, proto: int = 0, netns: Netns | None = None) -> socket.socket:
    if netns is None:
        return socket.socket(family, kind, proto)
    return netns.call(lambda: socket.socket(family, kind, proto))


@implementer(IReadWriteDescriptor)
class TcpProbe:
    """One connect (and optional send/expect) attempt; ``result`` fires once, never fails."""

    def __init__(
        self,
        reactor: Any,
        address: str,
        port: int,
        timeout: float,
        source: str | None = None,
        send: bytes | None = None,
        expect: re.Pattern[bytes] | None = None,
        netns: Netns | None = None,
    ) -> None:
        self.reactor = reactor
        self.result: Deferred[ProbeResult] = Deferred(self._cancel)
        self._send = send
        self._expect = expect
        self._buffer = b""
        self._connected = False
        self._sock: socket.socket | None = None
        self._timer: IDelayedCall | None = None
        self._started = reactor.seconds()
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        try:
            self._sock = make_socket(family, socket.SOCK_STREAM, 0, netns)
        except NetnsError as e:
            self._finish(False, "L4CON", str(e))
            return
        except OSError as e:
            self._finish(False, "L4CON", f"socket: {e.strerror}")
            return
        try:
            self._sock.setblocking(False)
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
            if source:
                self._sock.bind((source, 0))
            err = self._sock.connect_ex((address, port))
        except OSError as e:
            self._finish(False, "L4CON", f"connect: {e.strerror}")
            return
        if err not in (0, errno.EINPROGRESS):
            self._finish(False, "L4CON", os.strerror(err).lower())
            return
        self._timer = reactor.callLater(timeout, self._timed_out)
        reactor.addWriter(self)

    # IReadWriteDescriptor
    def fileno(self) -> int:
        return self._sock.fileno() if self._sock is not None else -1

    def logPrefix(self) -> str:
        return "TcpProbe"

    def connectionLost(self, reason: Failure) -> None:
        self._finish(False, "L4CON", f"lost: {reason.getErrorMessage()}")

    def doWrite(self) -> None:
        assert self._sock is not None
        if not self._connected:
            err = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self._finish(False, "L4CON", os.strerror(err).lower())
                return
            self._connected = True
            if self._send is None and self._expect is None:
                self._finish(True, "L4OK", "connected")
                return
        if self._send:
            try:
                sent = self._sock.send(self._send)
            except BlockingIOError:
                return
            except OSError as e:
                self._finish(False, "L7RSP", f"send: {e.strerror}")
                return
            self._send = self._send[sent:]
            if self._send:
                return
        self.reactor.removeWriter(self)
        if self._expect is None:
            self._finish(True, "L4OK", "connected, sent")
            return
        self.reactor.addReader(self)

    def doRead(self) -> None:
        assert self._sock is not None and self._expect is not None
        try:
            data = self._sock.recv(4096)
        except BlockingIOError:
            return
        except OSError as e:
            self._finish(False, "L7RSP", f"recv: {e.strerror}")
            return
        if not data:
            self._finish(False, "L7RSP", f"closed before {self._expect.pattern!r} matched")
            return
        self._buffer += data
        if self._expect.search(self._buffer):
            self._finish(True, "L7OK", "expected response")
        elif len(self._buffer) >= MAX_READ:
            self._finish(False, "L7RSP", f"no match for {self._expect.pattern!r} in the first {MAX_READ} bytes")

    def _timed_out(self) -> None:
        self._timer = None
        if self._connected:
            self._finish(False, "L7TOUT", "no expected response before the timeout")
        else:
            self._finish(False, "L4TOUT", "connect timeout")

    def _cancel(self, d: Deferred[ProbeResult]) -> None:
        self._close()
        # The Deferred canceller errbacks with CancelledError for us.

    def _close(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._sock is not None:
            self.reactor.removeReader(self)
            self.reactor.removeWriter(self)
            self._sock.close()
            self._sock = None

    def _finish(self, ok: bool, code: str, detail: str) -> None:
        if self.result.called:
            return
        self._close()
        # Fire after cleanup: callbacks may start the next probe right away.
        self.result.callback(ProbeResult(ok, code, detail, self.reactor.seconds() - self._started))


def tcp_probe(
    reactor: Any,
    address: str,
    port: int,
    timeout: float,
    source: str | None = None,
    send: bytes | None = None,
    expect: re.Pattern[bytes] | None = None,
    netns: Netns | None = None,
) -> Deferred[ProbeResult]:
    return TcpProbe(reactor, address, port, timeout, source, send, expect, netns).result


Prober = Callable[[], "Deferred[ProbeResult]"]
