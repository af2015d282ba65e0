"""Probes: each backend gets a Probe whose ``start(done)`` runs one probe.

``done`` receives a ProbeResult exactly once, unless the returned handle is
cancelled first (the backend was paused, disabled, removed or its check
changed). Network problems are results, never exceptions. Pure TCP connect
checks run on the compiled engine (``connect.py``); TCP with send/expect,
plain HTTP (``rawhttp.py``) and HTTPS (the same over ``tls.py``) on the lean
multiplexed path (``tcp.py``), and an HTTP or HTTPS check that reads only the
status line also has a ``pilot`` on the engine for its steady state; the other types
produce Deferreds, adapted by DeferredProbe.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.defer import CancelledError, Deferred
from twisted.python.failure import Failure

from ...config import Backend, CheckType, HealthCheck, HttpParams, IcmpParams, TcpParams
from ...log import Logger
from ...timers import TimerQueue
from ..netns import Netns
from ..state import ProbeResult
from .connect import AutopilotStats, ConnectCheck, ConnectEngine
from .dnscheck import DnsProber
from .execcheck import ExecPool, ExecProber, Reported
from .grpccheck import GrpcProber
from .icmp import Pingers
from .rawhttp import HttpVerdict, body_pattern, request_bytes
from .tcp import Done, TcpMux
from .tls import TlsBackend

if TYPE_CHECKING:
    from ...reactor import Reactor

log = Logger(namespace="maglev.health.probes")
# Probe durations are counted in these buckets (seconds; the metrics' histogram).
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class Cancellable(Protocol):
    def cancel(self) -> Any: ...


class Pilot(Protocol):
    """The optional capability of a probe to fly a steadily up backend by itself.

    While a backend is up with a full counter, a passing probe changes nothing: a pilot
    probes on its own at the normal interval and only counts. The first answer that is
    not a pass goes to ``done`` and ends it; ``stats()`` hands over (and resets) the counts.
    """

    last_base: float  # of the answer that ended the flight: when its probe was due
    last_late: float

    def autopilot(self, due: float, interval: float, resolution: float, stall: float, done: Done) -> Cancellable: ...

    def stats(self) -> AutopilotStats: ...

    def ok_result(self, duration: float, status: int) -> ProbeResult: ...

    def in_flight(self) -> bool: ...


class Probe(Protocol):
    def start(self, done: Done) -> Cancellable: ...

    def close(self) -> None:
        """It will not be used again: what it keeps between probes (a socket, a connection) goes."""
        ...

    @property
    def pilot(self) -> Pilot | None:
        """What can fly this backend on autopilot, if anything."""
        ...


class DeferredProbe:
    """A probe built from a function returning Deferred[ProbeResult]."""

    pilot = None

    def __init__(
        self, fn: Callable[[], Deferred[ProbeResult]], name: str = "", closer: Callable[[], None] | None = None
    ) -> None:
        self.fn = fn
        self.name = name
        self.closer = closer  # what the probe keeps between probes (a gRPC connection) goes with it

    def close(self) -> None:
        if self.closer is not None:
            self.closer()

    def start(self, done: Done) -> Cancellable:
        d = self.fn()

        def failed(f: Failure) -> None:
            if f.check(CancelledError, asyncio.CancelledError):  # asyncio's: a cancelled exec run
                return
            log.failure("probe of {backend} failed unexpectedly", f, backend=self.name)
            done(ProbeResult(False, "L4CON", f"internal error: {f.getErrorMessage()}"))

        d.addCallbacks(done, failed)
        return d


def internal_error(name: str, e: Exception, done: Done) -> Cancellable:
    """A probe's own bug becomes a failed result and a log line, not a stuck backend."""
    log.failure("probe of {backend} raised", backend=name)
    done(ProbeResult(False, "L4CON", f"internal error: {e}"))
    return Deferred()


class TcpProbe:
    """Guards itself (no _Guarded around it: one call less on the busiest path)."""

    pilot = None

    def __init__(
        self,
        mux: TcpMux,
        address: str,
        port: int,
        timeout: float,
        source: str | None,
        send: bytes | None,
        expect: re.Pattern[bytes] | None,
        netns: Netns | None,
        name: str = "",
    ) -> None:
        self.mux = mux
        self.address, self.port, self.timeout = address, port, timeout
        self.source, self.send, self.expect, self.netns = source, send, expect, netns
        self.name = name

    def close(self) -> None:
        return None  # its sockets are the multiplexer's

    def start(self, done: Done) -> Cancellable:
        try:
            return self.mux.start(
                self.address, self.port, self.timeout, done, self.source, self.send, self.expect, self.netns
            )
        except Exception as e:
            return internal_error(self.name, e, done)


@functools.lru_cache(maxsize=256)
def status_verdict(params: HttpParams) -> Callable[[], HttpVerdict]:
    """What judges the status lines the autopilot does not count: one for every backend
    checked with ``params`` (a closure each was 200 bytes a backend)."""
    return functools.partial(HttpVerdict, params)


class RawHttpProbe:
    """HTTP on the raw TCP path: one send, the answer judged as it arrives; HTTPS the same
    through TLS, resuming the backend's last session. Guards itself, as TcpProbe does."""

    __slots__ = (
        "mux", "params", "address", "port", "timeout", "tls", "request", "pattern", "source", "netns", "name", "pilot",
    )  # fmt: skip

    def __init__(
        self,
        mux: TcpMux,
        address: str,
        hc: HealthCheck,
        source: str | None,
        netns: Netns | None,
        name: str = "",
        engine: ConnectEngine | None = None,
    ) -> None:
        assert isinstance(hc.params, HttpParams) and hc.port is not None
        self.mux = mux
        self.params = params = hc.params
        self.address, self.port, self.timeout = address, hc.port, hc.timeout
        https = hc.type is CheckType.HTTPS
        self.tls = TlsBackend(address, params.host, not params.insecure) if https else None
        self.request = request_bytes(hc.params, address, hc.port, 443 if https else 80)
        self.pattern = body_pattern(hc.params)
        self.source = source
        self.netns = netns
        self.name = name
        # Steadily up, a check that only reads the status line flies on the engine's autopilot
        # (HTTPS with the engine's own TLS).
        self.pilot: ConnectCheck | None = None
        if engine is not None and self.pattern is None:
            self.pilot = ConnectCheck(
                engine, address, hc.port, hc.timeout, source, netns, name, self.request,
                [(r.low, r.high) for r in params.expect_status], status_verdict(params),
                self.tls.for_engine() if self.tls is not None else None,
            )  # fmt: skip

    def close(self) -> None:
        return None  # its sockets are the multiplexer's, its pilot forgets itself when collected

    def start(self, done: Done) -> Cancellable:
        try:
            judge = HttpVerdict(self.params, self.pattern)
            if self.tls is not None:
                return self.mux.start(
                    self.address, self.port, self.timeout, done, self.source, None, None, self.netns, judge,
                    self.tls.conversation(self.request),
                )  # fmt: skip
            return self.mux.start(
                self.address, self.port, self.timeout, done, self.source, self.request, None, self.netns, judge
            )
        except Exception as e:
            return internal_error(self.name, e, done)


class _Guarded:
    """A probe whose own bugs become failed results and a log line, not a stuck backend."""

    def __init__(self, inner: Probe, name: str) -> None:
        self.inner = inner
        self.name = name
        self.pilot = inner.pilot

    def close(self) -> None:
        self.inner.close()

    def start(self, done: Done) -> Cancellable:
        try:
            return self.inner.start(done)
        except Exception as e:
            return internal_error(self.name, e, done)


def run(probe: Probe) -> Deferred[ProbeResult]:
    """Run one probe and get its result as a Deferred (cancelling it cancels the probe)."""
    handle: list[Cancellable] = []
    d: Deferred[ProbeResult] = Deferred(lambda _: handle[0].cancel() if handle else None)

    def done(result: ProbeResult) -> None:
        if not d.called:
            d.callback(result)

    handle.append(probe.start(done))
    return d


def source_for(address: str, hc: HealthCheck) -> str | None:
    src = hc.probe_ipv6_src if ":" in address else hc.probe_ipv4_src
    return str(src) if src is not None else None


class ProbeFactory:
    """Builds the probe for a (backend, health check); owns the shared sockets."""

    def __init__(
        self,
        reactor: Reactor,
        netns: str | None = None,
        netns_dir: str | None = None,
        timers: TimerQueue | None = None,
        exec_pool: ExecPool | None = None,
        on_report: Reported | None = None,
    ) -> None:
        self.reactor = reactor
        self.timers = timers if timers is not None else TimerQueue(reactor)
        self.netns = (Netns(netns, netns_dir) if netns_dir else Netns(netns)) if netns else None
        self.pingers = Pingers(reactor, self.timers)
        self.tcp = TcpMux(reactor, self.timers)
        self.connect = ConnectEngine(reactor, DURATION_BUCKETS, self.timers.resolution)
        self.exec_pool = exec_pool if exec_pool is not None else ExecPool()  # the checker's: a reload resizes it
        self.on_report = on_report  # an exec check's dynamic weight goes here

    def probe_for(self, backend: Backend, hc: HealthCheck, address: str | None = None) -> Probe:
        """``address``: the backend's, as text (the prober's own: one string a backend)."""
        address = address or str(backend.address)
        source = source_for(address, hc)
        # The probes on the TCP multiplexer and the engine guard themselves; the others get a _Guarded.
        if hc.type in (CheckType.HTTP, CheckType.HTTPS):
            return RawHttpProbe(self.tcp, address, hc, source, self.netns, backend.name, self.connect)
        if hc.type is CheckType.TCP:
            params = hc.params if isinstance(hc.params, TcpParams) else TcpParams()
            assert hc.port is not None
            if not params.send and not params.expect:
                return ConnectCheck(self.connect, address, hc.port, hc.timeout, source, self.netns, backend.name)
            send = params.send.encode() if params.send else None
            expect = re.compile(params.expect.encode()) if params.expect else None
            return TcpProbe(self.tcp, address, hc.port, hc.timeout, source, send, expect, self.netns, backend.name)
        probe: Probe
        if hc.type is CheckType.DNS:
            dns_prober = DnsProber(self.reactor, address, hc, source, self.netns)
            probe = DeferredProbe(dns_prober.probe, backend.name, dns_prober.close)
        elif hc.type is CheckType.GRPC:
            grpc_prober = GrpcProber(self.reactor, address, hc, source, self.netns)
            probe = DeferredProbe(grpc_prober.probe, backend.name, grpc_prober.close)
        elif hc.type is CheckType.EXEC:
            where = self.netns.path if self.netns is not None else None
            prober = ExecProber(address, backend.name, hc, self.exec_pool, where, self.on_report)
            probe = DeferredProbe(prober.probe, backend.name)
        else:
            size = hc.params.payload_size if isinstance(hc.params, IcmpParams) else 56
            family = 6 if ":" in address else 4
            timeout = hc.timeout

            def ping() -> Deferred[ProbeResult]:
                return self.pingers.get(family, self.netns, source).ping(address, timeout, size)

            probe = DeferredProbe(ping, backend.name)
        return _Guarded(probe, backend.name)

    def start_lateness(self) -> tuple[tuple[int, ...], float]:
        """How late the probes the engine's autopilot started were (by LATENESS_BUCKETS)."""
        return self.connect.lateness()

    def close(self) -> None:
        self.tcp.close()
        self.connect.close()
        self.pingers.close()
        if self.netns is not None:
            self.netns.close()


__all__ = ["Cancellable", "DeferredProbe", "Pilot", "Probe", "ProbeFactory", "ProbeResult", "run"]
