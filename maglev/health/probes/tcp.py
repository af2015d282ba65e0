"""TCP connect probes on raw non-blocking sockets, multiplexed on one epoll set.

Twisted endpoints cost about five times the CPU of a raw socket, and even a raw
socket registered with the reactor pays for the asyncio selector bookkeeping
twice per probe. So all TCP probes of one factory share a private epoll set,
which the reactor watches as a single reader: a probe is connect(), one
epoll_ctl, and a timer in the shared TimerQueue.

Sockets are kept and reused: a finished probe's socket is disconnected with
connect(AF_UNSPEC), which Linux implements as an abort (an RST if a connection
was open, so the prober never piles up TIME_WAIT) leaving the socket ready to
connect again. That saves the socket(), setsockopt() and close() of every probe:
a quarter of the CPU of a connect check at 5,000 backends (docs/performance.md).
A socket whose probe was cancelled, or that fails to disconnect, is closed.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import math
import os
import re
import select
import socket
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.interfaces import IReadDescriptor
from twisted.python.failure import Failure
from zope.interface import implementer

from ...log import Logger
from ...reactor import watch_reader
from ...timers import TimerId, TimerQueue
from ..netns import Netns, NetnsError
from ..state import ProbeResult
from .tls import TlsConversation, TlsFailure

if TYPE_CHECKING:
    from ...reactor import Reactor

_LINGER_RST = struct.pack("ii", 1, 0)
MAX_READ = 16384
TLS_READ = 32768  # a TLS record is up to 16 KiB and some
MAX_EVENTS = 1024
MAX_IDLE = 4096  # idle sockets kept per (family, source, netns): the peak of probes in flight
NETNS_RECHECK = 1.0  # seconds between checks that a namespace was not created anew
_OUT = select.EPOLLOUT | select.EPOLLONESHOT
_IN = select.EPOLLIN | select.EPOLLONESHOT

Done = Callable[[ProbeResult], None]


@functools.cache
def refusal(err: int) -> str:
    """A connect's errno as a probe's detail: one text for every backend that got it (each
    keeps its last result: 73 bytes a backend refused)."""
    return os.strerror(err).lower()


TLS_TIMEOUT = "TLS handshake did not finish before the timeout"


class Judge(Protocol):
    """Decides a probe from the bytes received so far (None: read on)."""

    def judge(self, buffer: bytes, eof: bool) -> tuple[bool, str, str] | None: ...

    def timeout_detail(self) -> str: ...


def make_socket(family: int, kind: int, proto: int = 0, netns: Netns | None = None) -> socket.socket:
    if netns is None:
        return socket.socket(family, kind, proto)
    return netns.call(lambda: socket.socket(family, kind, proto))


def probe_socket(family: int, source: str | None, netns: Netns | None) -> socket.socket:
    """A non-blocking TCP socket for probes, bound to ``source`` if given, made in ``netns``."""
    sock = make_socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK, 0, netns)
    try:
        # Closing (a cancelled probe, shutdown) must reset too, never linger in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
        if source:
            sock.bind((source, 0))
    except OSError:
        sock.close()
        raise
    return sock


class NetnsWatch:
    """Notices a namespace deleted and created again under its name: idle probe sockets
    made in the old one must not be reused. Looks at most every NETNS_RECHECK seconds."""

    def __init__(self) -> None:
        self._seen: dict[Netns, tuple[float, tuple[int, int] | None]] = {}

    def __bool__(self) -> bool:
        return bool(self._seen)

    def made_socket(self, netns: Netns, now: float) -> None:
        if netns not in self._seen:
            self._seen[netns] = (now, netns.identity())

    def changed(self, netns: Netns, now: float) -> bool:
        checked, ident = self._seen.get(netns, (-math.inf, None))
        if now - checked < NETNS_RECHECK:
            return False
        current = netns.identity()
        self._seen[netns] = (now, current)
        return current != ident

    def all_changed(self, now: float) -> list[Netns]:
        return [netns for netns in list(self._seen) if self.changed(netns, now)]


def _libc_connect() -> Any:
    try:
        # PyDLL keeps the GIL: the call never blocks, and dropping the GIL would invite
        # the VPP thread in for every probe.
        # No argtypes: converting through them costs 0.6 µs a call, and an int and a bytes
        # object pass as int and char * anyway.
        return ctypes.PyDLL(None).connect
    except (OSError, AttributeError):
        return None


_connect = _libc_connect()
_AF_UNSPEC = bytes(16)  # a struct sockaddr whose family is AF_UNSPEC (0)


class TcpAttempt:
    """One connect (and optional send/expect); calls ``done`` exactly once unless cancelled."""

    __slots__ = (
        "mux", "sock", "fd", "key", "armed", "done", "send", "expect", "judge", "buffer", "connected", "timer",
        "started", "tls",
    )  # fmt: skip

    def __init__(
        self,
        mux: TcpMux,
        done: Done,
        send: bytes | None,
        expect: re.Pattern[bytes] | None,
        judge: Judge | None = None,
        tls: TlsConversation | None = None,
    ) -> None:
        self.mux = mux
        self.done: Done | None = done
        self.send = send  # with TLS: the TLS bytes still to write
        self.expect = expect
        self.judge = judge
        self.buffer = b""
        self.connected = False
        self.sock: socket.socket | None = None
        self.fd = -1
        self.key: PoolKey | None = None
        self.armed = False  # waiting in the epoll set for an event
        self.timer: TimerId | None = None
        self.started = mux.clock.seconds()
        self.tls = tls  # HTTPS: the request goes through it, and the answer comes out of it

    def cancel(self) -> None:
        self.done = None
        if self.tls is not None:
            self.tls.abandon()
        self._close(reuse=False)

    def ready(self) -> None:
        """The socket is writable (connect finished) or readable (expect)."""
        sock = self.sock
        if sock is None:
            return
        if not self.connected:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.finish(False, "L4CON", refusal(err))
                return
            self.connected = True
            if self.tls is not None:
                self._tls_turn(sock, False)
                return
            if self.send is None and self.expect is None and self.judge is None:
                self.finish(True, "L4OK", "connected")
                return
        elif self.tls is not None:
            self._tls_turn(sock, True)
            return
        if self.send:
            try:
                sent = sock.send(self.send)
            except BlockingIOError:
                sent = 0
            except OSError as e:
                self.finish(False, "L7RSP", f"send: {e.strerror}")
                return
            self.send = self.send[sent:]
            if self.send:
                self.mux.watch(self, _OUT)
                return
            if self.expect is None and self.judge is None:
                self.finish(True, "L4OK", "connected, sent")
                return
            self.mux.watch(self, _IN)
            return
        if self.expect is None and self.judge is None:
            self.finish(True, "L4OK", "connected, sent")
            return
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            self.mux.watch(self, _IN)
            return
        except OSError as e:
            self.finish(False, "L7RSP", f"recv: {e.strerror}")
            return
        if self.judge is not None:
            self.buffer += data
            verdict = self.judge.judge(self.buffer, not data)
            if verdict is not None:
                self.finish(*verdict)
            else:
                self.mux.watch(self, _IN)
            return
        assert self.expect is not None
        if not data:
            self.finish(False, "L7RSP", f"closed before {self.expect.pattern!r} matched")
            return
        self.buffer += data
        if self.expect.search(self.buffer):
            self.finish(True, "L7OK", "expected response")
        elif len(self.buffer) >= MAX_READ:
            self.finish(False, "L7RSP", f"no match for {self.expect.pattern!r} in the first {MAX_READ} bytes")
        else:
            self.mux.watch(self, _IN)

    def _tls_turn(self, sock: socket.socket, readable: bool) -> None:
        """The socket is ready for TLS: write what is left, or read, step TLS, write and
        judge the plaintext; then wait for more."""
        tls = self.tls
        assert tls is not None
        if self.send:  # writable again: the rest of what TLS had to send
            if self._tls_write(sock):
                self.mux.watch(self, _IN)
            return
        if readable:
            try:
                data = sock.recv(TLS_READ)
            except BlockingIOError:
                self.mux.watch(self, _IN)
                return
            except OSError as e:
                self._tls_failed(tls, "recv", e)
                return
            tls.receive(data)
        try:
            out, plain, eof = tls.step()
        except TlsFailure as e:
            self.finish(False, "L6RSP", str(e))
            return
        if plain or eof:
            assert self.judge is not None
            self.buffer += plain
            verdict = self.judge.judge(self.buffer, eof)
            if verdict is not None:
                self.finish(*verdict)
                return
            if eof:
                self.finish(False, "L7RSP", "closed before the answer was complete")
                return
        if out:
            self.send = out
            if not self._tls_write(sock):
                return
        self.mux.watch(self, _IN)

    def _tls_failed(self, tls: TlsConversation, call: str, e: OSError) -> None:
        reason = (e.strerror or str(e)).lower()
        if tls.handshaken:
            self.finish(False, "L7RSP", f"{call}: {reason}")
        else:
            self.finish(False, "L6RSP", f"TLS: {reason} during the handshake")

    def _tls_write(self, sock: socket.socket) -> bool:
        """Writes what TLS has to send; False if some is left (then waits to write) or it failed."""
        assert self.send is not None and self.tls is not None
        try:
            sent = sock.send(self.send)
        except BlockingIOError:
            sent = 0
        except OSError as e:
            self._tls_failed(self.tls, "send", e)
            return False
        self.send = self.send[sent:]
        if self.send:
            self.mux.watch(self, _OUT)
            return False
        return True

    def timed_out(self) -> None:
        self.timer = None
        # After a busy spell (a big sync's results, a burst of transitions) more sockets may
        # be ready than one poll returns (MAX_EVENTS), and the timeouts run in the same turn:
        # answers that are already there win over the timeout.
        self.mux.drain()
        if self.done is None or self.sock is None:
            return
        if self.connected and self.tls is not None and not self.tls.handshaken:
            self.finish(False, "L6TOUT", TLS_TIMEOUT)
        elif self.connected and self.judge is not None:
            self.finish(False, "L7TOUT", self.judge.timeout_detail())
        elif self.connected:
            self.finish(False, "L7TOUT", "no expected response before the timeout")
        else:
            self.finish(False, "L4TOUT", "connect timeout")

    def finish(self, ok: bool, code: str, detail: str) -> None:
        done, self.done = self.done, None
        if self.tls is not None:
            self.tls.end(code == "L6RSP")
        self._close()
        if done is not None:
            done(ProbeResult(ok, code, detail, self.mux.clock.seconds() - self.started))

    def _close(self, reuse: bool = True) -> None:
        if self.timer is not None:
            self.mux.timers.cancel(self.timer)
            self.timer = None
        sock, self.sock = self.sock, None
        if sock is not None:
            self.mux.release(self, sock, reuse)


PoolKey = tuple[int, "str | None", "Netns | None"]  # family, source address, namespace


@implementer(IReadDescriptor)
class TcpMux:
    """The shared epoll set of TCP probes, seen by the reactor as one reader."""

    log = Logger()

    def __init__(self, reactor: Reactor, timers: TimerQueue) -> None:
        self.reactor = reactor
        self.clock = reactor
        self.timers = timers
        self._ep: select.epoll | None = None
        self._unwatch: Callable[[], None] | None = None
        self._attempts: dict[int, TcpAttempt] = {}  # fd -> the attempt using it
        self._registered: set[int] = set()  # fds in the epoll set
        self._idle: dict[PoolKey, list[socket.socket]] = {}
        self._netns = NetnsWatch()
        self.sockets_opened = 0

    def start(
        self,
        address: str,
        port: int,
        timeout: float,
        done: Done,
        source: str | None = None,
        send: bytes | None = None,
        expect: re.Pattern[bytes] | None = None,
        netns: Netns | None = None,
        judge: Judge | None = None,
        tls: TlsConversation | None = None,
    ) -> TcpAttempt:
        attempt = TcpAttempt(self, done, send, expect, judge, tls)
        key = (socket.AF_INET6 if ":" in address else socket.AF_INET, source, netns)
        try:
            sock = self._socket(key)
        except NetnsError as e:
            attempt.finish(False, "L4CON", str(e))
            return attempt
        except OSError as e:
            attempt.finish(False, "L4CON", f"socket: {(e.strerror or str(e)).lower()}")
            return attempt
        attempt.sock, attempt.fd, attempt.key = sock, sock.fileno(), key
        self._attempts[attempt.fd] = attempt
        try:
            if send is None and expect is None and judge is None and tls is None:
                # A connect check: hold back the handshake's last ACK; the RST that ends
                # the probe goes out instead, so the backend never has to accept (as HAProxy).
                # Per connect: a disconnect clears it.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
            err = sock.connect_ex((address, port))
        except OSError as e:
            attempt.finish(False, "L4CON", f"connect: {(e.strerror or str(e)).lower()}")
            return attempt
        if err not in (0, errno.EINPROGRESS):
            attempt.finish(False, "L4CON", refusal(err))
            return attempt
        attempt.timer = self.timers.call_later(timeout, attempt.timed_out)
        self.watch(attempt, _OUT)
        return attempt

    def _socket(self, key: PoolKey) -> socket.socket:
        """An idle socket for ``key``, or a new one."""
        idle = self._idle.get(key)
        netns = key[2]
        if idle and (netns is None or not self._netns_changed(netns)):
            return idle.pop()
        family, source, _ = key
        sock = probe_socket(family, source, netns)
        self.sockets_opened += 1
        if netns is not None:
            self._netns.made_socket(netns, self.clock.seconds())
        return sock

    def _netns_changed(self, netns: Netns) -> bool:
        """Whether the namespace was created anew since its idle sockets were made (then
        they are closed: they still belong to the old one)."""
        if not self._netns.changed(netns, self.clock.seconds()):
            return False
        for key, idle in self._idle.items():
            if key[2] is netns:
                self._close_all(idle)
        return True

    def watch(self, attempt: TcpAttempt, events: int) -> None:
        ep = self._ep
        if ep is None:
            ep = self._ep = select.epoll()
            self._unwatch = watch_reader(self.reactor, self, self.log)
        if attempt.fd in self._registered:
            ep.modify(attempt.fd, events)
        else:
            ep.register(attempt.fd, events)
            self._registered.add(attempt.fd)
        attempt.armed = True

    def release(self, attempt: TcpAttempt, sock: socket.socket, reuse: bool) -> None:
        """The attempt is over: keep its socket for another probe, or close it."""
        fd, key = attempt.fd, attempt.key
        if self._attempts.get(fd) is attempt:
            del self._attempts[fd]
        if reuse and key is not None and self._ep is not None and _connect is not None:
            idle = self._idle.get(key)
            if idle is None:
                idle = self._idle[key] = []
            if len(idle) < MAX_IDLE:
                try:
                    if attempt.armed:
                        # Still waiting (a timeout): out of the epoll set, or the disconnect's
                        # hang-up would wake us for a socket nobody uses.
                        self._ep.unregister(fd)
                        self._registered.discard(fd)
                    # connect(AF_UNSPEC): abort the connection (RST if one is open) and
                    # leave the socket ready to connect again.
                    kept = _connect(fd, _AF_UNSPEC, len(_AF_UNSPEC)) == 0
                except OSError:
                    kept = False
                if kept:
                    idle.append(sock)
                    return
        self._registered.discard(fd)
        sock.close()  # also removes it from the epoll set

    def _close_all(self, sockets: list[socket.socket]) -> None:
        for sock in sockets:
            self._registered.discard(sock.fileno())
            sock.close()
        sockets.clear()

    # IReadDescriptor: the epoll fd is readable when any probe socket is ready.
    def fileno(self) -> int:
        return self._ep.fileno() if self._ep is not None else -1

    def doRead(self) -> None:
        self._poll()

    def drain(self) -> None:
        """Handle everything that is ready now."""
        while self._poll() == MAX_EVENTS:
            pass

    def _poll(self) -> int:
        if self._ep is None:
            return 0
        # Resolve attempts before running any: a finished probe frees its socket, and an
        # attempt started meanwhile may reuse it; that one must not see this event.
        ready = [self._attempts.get(fd) for fd, _ in self._ep.poll(0, MAX_EVENTS)]
        for attempt in ready:
            if attempt is not None and attempt.sock is not None:
                attempt.armed = False  # EPOLLONESHOT: reported once, then disarmed
                try:
                    attempt.ready()
                except Exception:
                    self.log.failure("TCP probe result handling failed")
                    attempt.cancel()
        return len(ready)

    def logPrefix(self) -> str:
        return "TcpMux"

    def connectionLost(self, reason: Failure) -> None:
        self.close()

    def close(self) -> None:
        for attempt in list(self._attempts.values()):
            attempt.cancel()
        for idle in self._idle.values():
            self._close_all(idle)
        self._idle.clear()
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        if self._ep is not None:
            self._ep.close()
            self._ep = None
        self._registered.clear()
