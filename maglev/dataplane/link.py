"""The VPP connection on the reactor thread, and the one VPP thread behind it.

VppThread is the only way into the worker: one thread (vpp_papi blocks), calls queued in
order, results handed back to the reactor. VppLink carries out the outputs of the
connection machine (``connection.py``): connects, announces, keeps the connection alive,
notices a loss, closes, backs off and tries again. LbSync hears of it through two
callbacks and reads ``connected`` / ``info``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorFromThreads, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger as TwistedLogger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from ..bus import EventBus
from ..events import VppConnected, VppDisconnected
from ..log import Logger
from .connection import ConnectionInput, ConnectionMachine, ConnectionState, Output
from .errors import VppUnreachable
from .vppclient import VppInfo
from .worker import VppWorker

RECONNECT = 5.0  # between attempts when VPP is there but the connection fails
KEEPALIVE = 10.0
# While nothing listens on the API socket (VPP down or restarting), attempts are cheap (one
# refused connect on a unix socket): they back off from FIRST_RETRY, doubling, to FAST_RETRY.
FIRST_RETRY = 0.1
FAST_RETRY = 1.0
T = TypeVar("T")


class VppThread:
    def __init__(self, reactor: IReactorTime) -> None:
        self._threads = IReactorFromThreads(reactor)  # results come back to the reactor through it
        self.pool = ThreadPool(1, 1, name="vpp")

    def start(self) -> None:
        self.pool.start()

    def stop(self) -> None:
        self.pool.stop()

    def to_reactor(self, fn: Callable[..., object], *args: Any) -> None:
        """From any thread: call ``fn(*args)`` on the reactor thread."""
        self._threads.callFromThread(fn, *args)

    def run(self, fn: Callable[..., T], *args: Any) -> Deferred[T]:
        """Run ``fn(*args)`` on the VPP thread, after everything queued before it."""
        return deferToThreadPool(self._threads, self.pool, fn, *args)


def every(clock: IReactorTime, seconds: float, fn: Callable[[], object], what: str, log: TwistedLogger) -> LoopingCall:
    """``fn`` every ``seconds`` (not now); a loop that dies says so in the log."""
    loop = LoopingCall(fn)
    loop.clock = clock
    loop.start(seconds, now=False).addErrback(lambda f: log.failure("{what} loop stopped", f, what=what))
    return loop


class VppLink:
    log = Logger(namespace="maglev.dataplane.service.LbSync")

    def __init__(
        self,
        reactor: IReactorTime,
        thread: VppThread,
        worker: VppWorker,
        bus: EventBus,
        on_connected: Callable[[VppInfo], None],
        on_lost: Callable[[], None],
        wallclock: Callable[[], float] = time.time,
    ) -> None:
        self.reactor = reactor
        self.thread = thread
        self.worker = worker
        self.bus = bus
        self.on_connected = on_connected
        self.on_lost = on_lost
        self.wallclock = wallclock
        self.machine = ConnectionMachine()
        self.info: VppInfo | None = None
        self._retry: IDelayedCall | None = None
        self._keepalive: LoopingCall | None = None
        self._last_error: str | None = None
        self._delay = FIRST_RETRY  # the next retry's, after a loss or while VPP is unreachable

    @property
    def connected(self) -> bool:
        return self.machine.connected

    @property
    def state(self) -> ConnectionState:
        return self.machine.state

    def start(self) -> None:
        self._feed(ConnectionInput.START)

    def stop(self) -> None:
        self._stop_keepalive()
        self._feed(ConnectionInput.STOP)

    def lost(self, reason: str) -> None:
        """A call found the connection broken (ignored unless connected)."""
        self._feed(ConnectionInput.LOST, reason)

    def failed_call(self, failure: Failure) -> None:
        """An errback for calls whose failure means the connection is gone."""
        self.lost(failure.getErrorMessage())

    def closed_by_vpp(self, connection: int, why: str, protocol: bool) -> None:
        """The API socket of ``connection`` closed (told by its reader thread, at once)."""
        info = self.info
        if not self.connected or info is None or info.connection != connection:
            return  # an earlier connection's last word, or a loss already seen
        if protocol:
            self.log.error(
                "VPP protocol error: {error}; dropping the connection", event="vpp-protocol-error", error=why
            )
        self.lost(why)

    def ping(self) -> Deferred[None]:
        """Check the connection now (also every KEEPALIVE seconds); a failure is a loss."""
        return self.thread.run(self.worker.ping).addErrback(self.failed_call)

    # --- the machine's outputs -------------------------------------------------------
    def _feed(self, what: ConnectionInput, detail: Any = None) -> None:
        for output in self.machine.feed(what):
            if output is Output.CONNECT:
                self.thread.run(self.worker.connect).addCallbacks(
                    lambda info: self._feed(ConnectionInput.CONNECTED, info),
                    lambda f: self._feed(ConnectionInput.FAILED, f),
                )
            elif output is Output.ANNOUNCE_CONNECTED:
                self._connected(detail)
            elif output is Output.REPORT_FAILURE:
                self._connect_failed(detail)
            elif output is Output.ANNOUNCE_LOST:
                self._lost(detail)
            elif output is Output.CLOSE:
                self.thread.run(self.worker.close).addBoth(lambda _: self._feed(ConnectionInput.CLOSED))
            elif output is Output.SCHEDULE_RETRY:
                self._retry = self.reactor.callLater(self._next_delay(detail), self._feed, ConnectionInput.RETRY)
            elif output is Output.CANCEL_RETRY and self._retry is not None and self._retry.active():
                self._retry.cancel()

    def _next_delay(self, failure: object) -> float:
        """After a loss or while nothing listens: soon, backing off; else RECONNECT."""
        if isinstance(failure, Failure) and not failure.check(VppUnreachable):
            return RECONNECT
        delay, self._delay = self._delay, min(self._delay * 2, FAST_RETRY)
        return delay

    def _connect_failed(self, failure: Failure) -> None:
        message = failure.getErrorMessage()
        if message != self._last_error:  # say it once, not at every attempt
            self._last_error = message
            every = f"up to every {FAST_RETRY:g}s" if failure.check(VppUnreachable) else f"every {RECONNECT:g}s"
            self.log.warn(
                "cannot connect to VPP: {error}; retrying {every}",
                event="vpp-connect-failed", error=message, every=every,
            )  # fmt: skip

    def _connected(self, info: VppInfo) -> None:
        self._last_error = None
        self._delay = FIRST_RETRY
        self.info = info
        self.log.info(
            "connected to VPP {version} (pid {pid}), lb API: {mode}",
            event="vpp-connect", version=info.version, pid=info.pid, mode=info.api_mode, build_date=info.build_date,
        )  # fmt: skip
        self.bus.publish(VppConnected(self.wallclock(), info.version, info.pid, info.weights))
        self._keepalive = every(self.reactor, KEEPALIVE, self.ping, "VPP keepalive", self.log)
        self.on_connected(info)

    def _lost(self, reason: str) -> None:
        self._stop_keepalive()
        self.log.warn("lost VPP: {reason}; reconnecting", event="vpp-disconnect", reason=reason, retry=self._delay)
        self.bus.publish(VppDisconnected(self.wallclock(), reason))
        self.on_lost()

    def _stop_keepalive(self) -> None:
        if self._keepalive is not None and self._keepalive.running:
            self._keepalive.stop()
        self._keepalive = None


__all__ = ["FAST_RETRY", "FIRST_RETRY", "KEEPALIVE", "RECONNECT", "VppLink", "VppThread", "every"]
