"""TCP connect checks on the compiled engine (``_connect.c``), and its autopilot
(also for plain HTTP checks).

A connect check (a TCP health check without send/expect) is the cheapest and
most common probe, and at thousands of backends its Python per-probe work was
the whole gap to HAProxy's C. So the probe loop of connect checks is compiled:
sockets, the epoll set, timeouts and reuse (as ``tcp.py`` does for the other
TCP probes) live in ``ConnectChecks``.

A ConnectCheck is a Probe like any other: ``start(done)`` runs one probe and
gives its result to Python. On top of that, a backend that is steadily up can
hand its probing over with ``autopilot``: the engine then probes at the normal
interval by itself and only counts the successes, and the first probe that
does not connect ends the autopilot and comes back to Python as a result. The
prober folds the counts in with ``stats()`` whenever someone looks.

Plain HTTP checks without ``expect-body`` fly on the same autopilot (a
RawHttpProbe's ``pilot``): the engine sends the request and counts a status line
in the accepted ranges as a success; anything else comes back with the bytes
received and HttpVerdict judges them, as it judges every Python-driven probe.
HTTPS checks do too, with TLS in the engine (the system's OpenSSL over the probe
socket) and the backend's session kept there; a TLS failure comes back worded as
``tls.py`` words it.

The engine never reads the time: ConnectEngine passes the reactor's.
"""

from __future__ import annotations

import os
import socket
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from twisted.internet.interfaces import IDelayedCall, IReadDescriptor
from twisted.python.failure import Failure
from zope.interface import implementer

from ...log import Logger
from ...reactor import watch_reader
from ...timers import Alarm
from ..lateness import LATENESS_BUCKETS
from ..netns import Netns, NetnsError
from ..state import ProbeResult
from . import _connect
from .rawhttp import HttpVerdict, http_status
from .tcp import TLS_TIMEOUT, Done, NetnsWatch, probe_socket, refusal
from .tls import EngineTls

if TYPE_CHECKING:
    from ...reactor import Reactor

ANSWERS_PER_TURN = 64  # answers handed over in one reactor turn at most
_CONNECTED = "connected"

PoolKey = tuple[int, "str | None", "Netns | None"]  # family, source address, namespace


class _NoSocket(Exception):
    """No socket for a probe: its text is the result's detail."""


class AutopilotStats(NamedTuple):
    """What the autopilot counted since the last look."""

    sent: int
    ok: int
    hits: tuple[tuple[int, int], ...]  # (bucket, probes): the duration buckets hit (bounds as bisect_left)
    duration_sum: float
    last_duration: float
    last_time: float  # reactor clock
    last_late: float
    next_due: float | None
    last_status: int  # HTTP checks: of the last success


def result_of(
    err: int,
    duration: float,
    detail: str | None,
    data: bytes | None = None,
    verdict: Callable[[], HttpVerdict] | None = None,
) -> ProbeResult:
    """The engine's answer as a result; for HTTP, once connected, HttpVerdict decides."""
    if err == _connect.ERR_TLS:
        return ProbeResult(False, "L6RSP", detail or "TLS: failed", duration)
    if err == _connect.ERR_TLS_TIMEOUT:
        return ProbeResult(False, "L6TOUT", TLS_TIMEOUT, duration)
    if verdict is not None and data is not None:
        return _http_result(verdict(), err, duration, detail, data)
    if err == 0:
        return ProbeResult(True, "L4OK", _CONNECTED, duration)
    if err == _connect.ERR_TIMEOUT:
        return ProbeResult(False, "L4TOUT", "connect timeout", duration)
    if err == _connect.ERR_SOCKET:
        return ProbeResult(False, "L4CON", detail or "no socket", duration)
    return ProbeResult(False, "L4CON", refusal(err), duration)


def _http_result(verdict: HttpVerdict, err: int, duration: float, detail: str | None, data: bytes) -> ProbeResult:
    if err == _connect.ERR_TIMEOUT:
        return ProbeResult(False, "L7TOUT", verdict.timeout_detail(), duration)
    if err == _connect.ERR_L7:
        return ProbeResult(False, "L7RSP", detail or "", duration)
    judged = verdict.judge(data, err == _connect.ERR_JUDGE_EOF)
    if judged is None:  # the engine reads a status line only so far
        judged = (False, "L7RSP", f"bad response: no HTTP status line in the first {len(data)} bytes")
    return ProbeResult(*judged, duration)


@implementer(IReadDescriptor)
class ConnectEngine:
    """The reactor's side of the engine: one reader (its epoll fd) and one timer."""

    log = Logger()

    def __init__(
        self,
        reactor: Reactor,
        bounds: tuple[float, ...],
        resolution: float,
        seed: int | None = None,
        late_bounds: tuple[float, ...] = LATENESS_BUCKETS,
    ) -> None:
        self.reactor = reactor
        self.bounds = bounds
        self.late_bounds = late_bounds
        self._c = _connect.ConnectChecks(
            self._open, bounds, resolution, seed if seed is not None else int.from_bytes(os.urandom(8), "little"),
            late_bounds,
        )  # fmt: skip
        self._pools: dict[PoolKey, int] = {}
        self._pool_keys: list[PoolKey] = []
        self._busy: dict[int, ConnectCheck] = {}  # probes in flight or on autopilot
        self._netns = NetnsWatch()
        self._alarm = Alarm(reactor, self._tick)
        self._unwatch: Callable[[], None] | None = None
        self._closed = False
        # Answered in C, not yet handed over: at most ANSWERS_PER_TURN a reactor turn, so
        # 10,000 first answers at start (each a transition) leave the API its turns.
        self._answers: deque[tuple[Any, ...]] = deque()
        self._more: IDelayedCall | None = None

    # --- targets ----------------------------------------------------------------------
    def add(
        self,
        address: str,
        port: int,
        timeout: float,
        source: str | None,
        netns: Netns | None,
        request: bytes | None = None,
        statuses: Sequence[tuple[int, int]] | None = None,
        tls: EngineTls | None = None,
    ) -> int:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        host, _, scope = address.partition("%")
        scope_id = socket.if_nametoindex(scope) if scope and not scope.isdigit() else int(scope or 0)
        key = (family, source, netns)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = self._c.add_pool()
            self._pool_keys.append(key)
        packed = socket.inet_pton(family, host)
        tid: int = self._c.add(pool, family, packed, port, timeout, scope_id, request, statuses, tls)
        return tid

    def forget(self, tid: int) -> None:
        self._busy.pop(tid, None)
        if not self._closed:
            self._c.remove(tid)

    def start(self, check: ConnectCheck) -> tuple[Any, ...] | None:
        self._watch()
        now = self.reactor.seconds()
        if self._netns:
            self._recheck_netns(now)
        answer = self._c.start(check.tid, now)
        if answer is None:
            self._busy[check.tid] = check
            self._arm()
        return answer

    def autopilot(self, check: ConnectCheck, due: float, interval: float, resolution: float, stall: float) -> None:
        self._watch()
        self._c.autopilot(check.tid, due, interval, resolution, stall)
        self._busy[check.tid] = check
        self._arm()

    def cancel(self, check: ConnectCheck) -> None:
        if self._busy.pop(check.tid, None) is not None and not self._closed:
            self._c.cancel(check.tid)

    def phase(self, check: ConnectCheck) -> tuple[int, int]:
        """(0 idle, 1 waiting or 2 in flight; 1 on autopilot or 0)."""
        return (0, 0) if self._closed else self._c.phase(check.tid)

    def in_flight(self, check: ConnectCheck) -> bool:
        return self.phase(check)[0] == 2

    def stats(self, check: ConnectCheck) -> AutopilotStats:
        if self._closed:  # stopped: nothing more was counted (a view may still look)
            return AutopilotStats(0, 0, (), 0.0, 0.0, 0.0, 0.0, None, 0)
        return tuple.__new__(AutopilotStats, self._c.stats(check.tid))  # as _make, without its Python

    def lateness(self) -> tuple[tuple[int, ...], float]:
        """How late the autopilot's starts were, since the engine was made (by late_bounds, and
        their sum); closing it keeps them."""
        return self._c.lateness()

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = self._c.counts()
        return counts

    # --- sockets ------------------------------------------------------------------------
    def _open(self, pool: int) -> int:
        """The engine's pool is empty: a new socket, which the engine then owns. Whatever
        this raises becomes the failed probe's detail."""
        try:
            return self._new_socket(pool)
        except _NoSocket:
            raise
        except Exception as e:
            self.log.failure("opening a probe socket failed")
            raise _NoSocket(f"internal error: {e}") from None

    def _new_socket(self, pool: int) -> int:
        family, source, netns = self._pool_keys[pool]
        try:
            sock = probe_socket(family, source, netns)
        except NetnsError as e:
            raise _NoSocket(str(e)) from None
        except OSError as e:
            raise _NoSocket(f"socket: {(e.strerror or str(e)).lower()}") from None
        if netns is not None:
            self._netns.made_socket(netns, self.reactor.seconds())
        return sock.detach()

    def _recheck_netns(self, now: float) -> None:
        """Idle sockets of a namespace that was created anew belong to the old one: close them."""
        for netns in self._netns.all_changed(now):
            for key, pool in self._pools.items():
                if key[2] is netns:
                    self._c.flush_pool(pool)

    # --- the reactor's side ---------------------------------------------------------------
    def _watch(self) -> None:
        if self._closed:
            raise RuntimeError("the connect-check engine is closed")
        if self._unwatch is None:
            self._unwatch = watch_reader(self.reactor, self, self.log)

    def _arm(self) -> None:
        wake = self._c.next_wake()
        if wake is not None:
            self._alarm.at(wake)

    def _tick(self) -> None:
        now = self.reactor.seconds()
        try:
            if self._netns:
                self._recheck_netns(now)
            self._deliver(self._c.tick(now))
        finally:
            if not self._closed:
                self._arm()

    def _deliver(self, answers: list[tuple[Any, ...]] | None) -> None:
        pending = self._answers
        if answers:
            pending.extend(answers)
        for _ in range(min(len(pending), ANSWERS_PER_TURN)):
            tid, _ok, err, duration, detail, base, late, data = pending.popleft()
            check = self._busy.pop(tid, None)  # None: cancelled or forgotten since
            if check is not None:
                try:
                    check.answer(check.result(err, duration, detail, data), base, late)
                except Exception:
                    self.log.failure("connect check result handling failed")
        if pending and self._more is None and not self._closed:
            self._more = self.reactor.callLater(0, self._next_answers)

    def _next_answers(self) -> None:
        self._more = None
        self._deliver(None)

    # IReadDescriptor: the epoll fd is readable when any probe socket is ready.
    def fileno(self) -> int:
        return -1 if self._closed else int(self._c.fileno())

    def doRead(self) -> None:
        self._deliver(self._c.poll(self.reactor.seconds()))
        if not self._closed:
            self._arm()

    def logPrefix(self) -> str:
        return "ConnectEngine"

    def connectionLost(self, reason: Failure) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        self._alarm.cancel()
        if self._more is not None and self._more.active():
            self._more.cancel()
        self._more = None
        self._answers.clear()
        self._busy.clear()
        self._closed = True
        self._c.close()


class ConnectCheck:
    """One backend's connect check: a Probe, and a Cancellable for its own probe. With a
    ``request`` and a ``verdict``, an HTTP check (only ever flown on autopilot); with
    ``tls`` as well, HTTPS."""

    __slots__ = ("engine", "tid", "name", "verdict", "_done", "last_base", "last_late")

    def __init__(
        self,
        engine: ConnectEngine,
        address: str,
        port: int,
        timeout: float,
        source: str | None,
        netns: Netns | None,
        name: str = "",
        request: bytes | None = None,
        statuses: Sequence[tuple[int, int]] | None = None,
        verdict: Callable[[], HttpVerdict] | None = None,
        tls: EngineTls | None = None,
    ) -> None:
        self.engine = engine
        self.tid = engine.add(address, port, timeout, source, netns, request, statuses, tls)
        self.name = name
        self.verdict = verdict
        self._done: Done | None = None
        self.last_base = 0.0  # of the last answer: when its probe was due, or started after a stall
        self.last_late = 0.0

    def __del__(self) -> None:
        """The engine forgets the check when it is collected. Not a ``weakref.finalize``: that
        is four more objects a backend, 380 bytes (docs/performance.md)."""
        try:
            engine, tid = self.engine, self.tid
        except AttributeError:  # the engine refused it: nothing to forget
            return
        engine.forget(tid)

    def close(self) -> None:
        return None  # the engine forgets it when it is collected (__del__)

    def start(self, done: Done) -> ConnectCheck:
        """Guards itself, as TcpProbe does."""
        try:
            self._done = done
            answer = self.engine.start(self)
        except Exception as e:
            from . import internal_error  # the package imports this module

            self._done = None
            internal_error(self.name, e, done)
            return self
        if answer is not None:
            _tid, _ok, err, duration, detail, base, late, data = answer
            self.answer(self.result(err, duration, detail, data), base, late)
        return self

    @property
    def pilot(self) -> ConnectCheck:
        """What flies this backend on autopilot: the check itself."""
        return self

    def result(self, err: int, duration: float, detail: str | None, data: bytes | None) -> ProbeResult:
        return result_of(err, duration, detail, data, self.verdict)

    def ok_result(self, duration: float, status: int) -> ProbeResult:
        """What a success the autopilot counted looked like."""
        if self.verdict is None:
            return ProbeResult(True, "L4OK", _CONNECTED, duration)
        return ProbeResult(True, "L7OK", http_status(status), duration)

    def autopilot(self, due: float, interval: float, resolution: float, stall: float, done: Done) -> ConnectCheck:
        """Probe every ``interval`` (±10%) from ``due`` while the backend connects; the first
        other answer goes to ``done`` and ends it."""
        self._done = done
        self.engine.autopilot(self, due, interval, resolution, stall)
        return self

    def answer(self, result: ProbeResult, base: float, late: float) -> None:
        done, self._done = self._done, None
        self.last_base, self.last_late = base, late
        if done is not None:
            done(result)

    def cancel(self) -> None:
        self._done = None
        self.engine.cancel(self)

    def in_flight(self) -> bool:
        return self.engine.in_flight(self)

    def stats(self) -> AutopilotStats:
        return self.engine.stats(self)


__all__ = ["AutopilotStats", "ConnectCheck", "ConnectEngine", "result_of"]
