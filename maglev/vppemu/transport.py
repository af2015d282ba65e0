"""VPP's binary-API socket transport, as the emulator serves it: one epoll loop.

Accepts clients, cuts their byte streams into frames (``>QII`` header, then the
message), hands each whole message to ``on_frame`` in arrival order, and writes what
was queued on a connection back without blocking. A frame that cannot be a VPP message
closes that connection only. Runs on the emulator's thread.
"""

from __future__ import annotations

import os
import select
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..log import Logger
from ..vppapi import FRAME

MAX_MESSAGE = 8 * 1024 * 1024


class Connection:
    def __init__(self, sock: socket.socket, number: int) -> None:
        self.sock = sock
        self.number = number
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.closing = False
        self.name = ""
        self.events = select.EPOLLIN

    def queue(self, data: bytes) -> None:
        """One message, framed, to send at the next flush."""
        self.outbuf += FRAME.pack(0, len(data), 0) + data


class ApiTransport:
    log = Logger(namespace="maglev.vppemu.server.Emulator")

    def __init__(
        self, on_frame: Callable[[Connection, bytes], None], hand_over: Callable[[socket.socket], None]
    ) -> None:
        self.on_frame = on_frame
        self.hand_over = hand_over  # a stats client: give it the segment
        self._ep = select.epoll()
        self._fds: dict[int, Any] = {}  # fd -> Connection, or (role, listening socket)
        self._conns: dict[int, Connection] = {}
        self._next_client = 1
        self._listeners: list[tuple[str, socket.socket]] = []

    def bind(self, path: str, kind: int, role: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        if os.path.exists(path):
            os.unlink(path)
        s = socket.socket(socket.AF_UNIX, kind)
        s.bind(path)
        s.listen(64)
        s.setblocking(False)
        self._fds[s.fileno()] = (role, s)
        self._ep.register(s.fileno(), select.EPOLLIN)
        self._listeners.append((path, s))

    def poll(self, timeout: float) -> None:
        """Serve what is ready (waiting up to ``timeout``); a handler's bug drops that client only."""
        for fd, events in self._ep.poll(timeout):
            target = self._fds.get(fd)
            if target is None:
                continue
            try:
                self.event(target, events)
            except Exception:
                self.log.failure("vppemu: internal error; dropping that connection")
                if isinstance(target, Connection):
                    self.close(target)

    def shut(self) -> None:
        """Close every client and listener, and remove the sockets' paths."""
        for conn in list(self._conns.values()):
            self.close(conn)
        for path, s in self._listeners:
            self._ep.unregister(s.fileno())
            s.close()
            if os.path.exists(path):
                os.unlink(path)
        self._ep.close()

    def event(self, target: Any, events: int) -> None:
        if isinstance(target, tuple) and target[0] == "api":
            sock, _ = target[1].accept()
            sock.setblocking(False)
            new = Connection(sock, self._next_client)
            self._next_client += 1
            self._conns[sock.fileno()] = new
            self._fds[sock.fileno()] = new
            self._ep.register(sock.fileno(), select.EPOLLIN)
            return
        if isinstance(target, tuple):
            sock, _ = target[1].accept()
            try:
                self.hand_over(sock)
            except OSError as e:
                self.log.warn("vppemu: stats client went away: {error}", error=e)
            finally:
                sock.close()
            return
        conn: Connection = target
        if events & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
            try:
                data = conn.sock.recv(262144)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                data = b""
            if data == b"":
                self.close(conn)
                return
            if data:
                conn.inbuf += data
                self._frames(conn)
                if conn.inbuf and conn.sock.fileno() >= 0:
                    # vpp_papi writes the header and the body separately: the body is
                    # usually there already, and reading it now saves a loop turn.
                    try:
                        more = conn.sock.recv(262144)
                    except OSError:
                        more = None
                    if more:
                        conn.inbuf += more
                        self._frames(conn)
        if events & select.EPOLLOUT:
            self.flush(conn)

    def _frames(self, conn: Connection) -> None:
        buf = conn.inbuf
        pos, end = 0, len(buf)
        while end - pos >= FRAME.size and not conn.closing:
            _, length, _ = FRAME.unpack_from(buf, pos)
            if length > MAX_MESSAGE or length < 2:
                self.log.error(
                    "vppemu: client {client} sent a frame of {length} bytes; closing it",
                    client=conn.number,
                    length=length,
                )
                self.close(conn)
                return
            if end - pos < FRAME.size + length:
                break  # the rest of this frame has not arrived yet
            start = pos + FRAME.size
            pos = start + length
            self.on_frame(conn, bytes(buf[start:pos]))
        if pos:
            del buf[:pos]
        self.flush(conn)

    def flush(self, conn: Connection) -> None:
        while conn.outbuf:
            try:
                sent = conn.sock.send(conn.outbuf)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.close(conn)  # the client vanished (e.g. mid-dump)
                return
            del conn.outbuf[:sent]
        want = select.EPOLLIN | (select.EPOLLOUT if conn.outbuf else 0)
        if conn.closing and not conn.outbuf:
            self.close(conn)
            return
        if want != conn.events and conn.sock.fileno() >= 0:
            conn.events = want
            self._ep.modify(conn.sock.fileno(), want)

    def close(self, conn: Connection) -> None:
        fd = conn.sock.fileno()
        if fd >= 0:
            self._ep.unregister(fd)
            self._conns.pop(fd, None)
            self._fds.pop(fd, None)
            conn.sock.close()


__all__ = ["ApiTransport", "Connection", "MAX_MESSAGE"]
