"""Create probe sockets inside a named network namespace.

A socket belongs to the namespace its creating thread was in at ``socket()``
time, so we enter the namespace only around socket creation, on the reactor
thread, and return at once (Python 3.11 has no ``os.setns``: libc's setns via
ctypes). The home namespace fd is opened once; the target is re-opened when
``/run/netns/NAME`` changes (a namespace deleted and created again).
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, fail
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint
from twisted.internet.error import ConnectError
from twisted.internet.interfaces import IProtocolFactory, IStreamClientEndpoint
from zope.interface import implementer

from ..log import Logger

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"
T = TypeVar("T")

_libc: Any = None


def _setns(fd: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


class NetnsError(Exception):
    """Entering the namespace failed; the message is what operators see in the log."""


class Netns:
    log = Logger()

    def __init__(self, name: str, directory: str = NETNS_DIR) -> None:
        self.name = name
        self.path = os.path.join(directory, name)
        self._home: int | None = None
        self._target: int | None = None
        self._target_id: tuple[int, int] | None = None
        self._last_error: str | None = None

    def _error(self, err: OSError) -> NetnsError:
        if err.errno in (errno.EPERM, errno.EACCES):
            reason = "operation not permitted"
        elif err.errno == errno.ENOENT:
            reason = "no such network namespace"
        else:
            reason = err.strerror or str(err)
        message = f'enter netns "{self.name}": {reason}'
        if message != self._last_error:  # log each new problem once, not once per probe
            self._last_error = message
            self.log.error("{message}", event="netns-error", message=message, netns=self.name)
        return NetnsError(message)

    def identity(self) -> tuple[int, int] | None:
        """Which namespace is at the path now (None: none is)."""
        try:
            return self._identity()
        except OSError:
            return None

    def _identity(self) -> tuple[int, int]:
        st = os.stat(self.path)
        return (st.st_dev, st.st_ino)

    def _open_target(self) -> int:
        ident = self._identity()
        if self._target is None or ident != self._target_id:
            if self._target is not None:
                os.close(self._target)
                self._target = None
            self._target = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            self._target_id = ident
        return self._target

    @contextmanager
    def entered(self) -> Iterator[None]:
        """Run the body inside the namespace; raises NetnsError if it cannot be entered."""
        try:
            if self._home is None:
                self._home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            _setns(self._open_target())
        except OSError as e:
            raise self._error(e) from None
        try:
            yield
        finally:
            _setns(self._home)  # must not fail: we came from there
        if self._last_error is not None:
            self.log.info('entered netns "{netns}" again', event="netns-ok", netns=self.name)
            self._last_error = None

    def call(self, fn: Callable[[], T]) -> T:
        with self.entered():
            return fn()

    def close(self) -> None:
        for fd in (self._home, self._target):
            if fd is not None:
                os.close(fd)
        self._home = self._target = None
        self._target_id = None


def backend_endpoint(
    reactor: Any, address: str, port: int, timeout: float, source: str | None, netns: Netns | None
) -> IStreamClientEndpoint:
    """A TCP client endpoint to a backend: from ``source``, inside ``netns`` when there is one."""
    cls = TCP6ClientEndpoint if ":" in address else TCP4ClientEndpoint
    ep: IStreamClientEndpoint = cls(
        reactor, address, port, timeout=timeout, bindAddress=(source, 0) if source else None
    )
    return NetnsEndpoint(ep, netns) if netns is not None else ep


@implementer(IStreamClientEndpoint)
class NetnsEndpoint:
    """Wraps a literal-IP client endpoint so its socket is created inside ``netns``.

    Twisted creates the TCP socket synchronously inside connectTCP; the connect
    itself happens later on the reactor, which is fine: the socket stays in the
    namespace it was created in.
    """

    def __init__(self, inner: IStreamClientEndpoint, netns: Netns) -> None:
        self.inner = inner
        self.netns = netns

    def connect(self, factory: IProtocolFactory) -> Deferred[Any]:
        try:
            with self.netns.entered():
                return self.inner.connect(factory)
        except NetnsError as e:
            return fail(ConnectError(string=str(e)))
