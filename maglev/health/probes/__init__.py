"""Probes: each backend gets a zero-argument callable that runs one probe.

A probe's Deferred fires with a ProbeResult and never fails for network
reasons; only cancellation errbacks it (when the backend is paused, disabled,
removed or its check changes).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.python.failure import Failure

from ...config import Backend, CheckType, HealthCheck, IcmpParams, TcpParams
from ...log import Logger
from ..netns import Netns
from ..state import ProbeResult
from .http import HttpProber
from .icmp import Pingers
from .tcp import tcp_probe

Probe = Callable[[], "Deferred[ProbeResult]"]


def source_for(address: str, hc: HealthCheck) -> str | None:
    src = hc.probe_ipv6_src if ":" in address else hc.probe_ipv4_src
    return str(src) if src is not None else None


class ProbeFactory:
    """Builds the probe for a (backend, health check); owns the shared ICMP sockets."""

    log = Logger()

    def __init__(self, reactor: Any, netns: str | None = None, netns_dir: str | None = None) -> None:
        self.reactor = reactor
        self.netns = (Netns(netns, netns_dir) if netns_dir else Netns(netns)) if netns else None
        self.pingers = Pingers(reactor)

    def probe_for(self, backend: Backend, hc: HealthCheck) -> Probe:
        address = str(backend.address)
        source = source_for(address, hc)
        raw: Probe
        if hc.type in (CheckType.HTTP, CheckType.HTTPS):
            raw = HttpProber(self.reactor, address, hc, self.netns).probe
        elif hc.type is CheckType.TCP:
            params = hc.params if isinstance(hc.params, TcpParams) else TcpParams()
            assert hc.port is not None
            send = params.send.encode() if params.send else None
            expect = re.compile(params.expect.encode()) if params.expect else None
            port, timeout, netns = hc.port, hc.timeout, self.netns

            def raw() -> Deferred[ProbeResult]:
                return tcp_probe(self.reactor, address, port, timeout, source, send, expect, netns)

        else:
            size = hc.params.payload_size if isinstance(hc.params, IcmpParams) else 56
            family = 6 if ":" in address else 4

            def raw() -> Deferred[ProbeResult]:
                return self.pingers.get(family, self.netns, source).ping(address, hc.timeout, size)

        return self._guarded(raw, backend.name)

    def _guarded(self, raw: Probe, name: str) -> Probe:
        def probe() -> Deferred[ProbeResult]:
            try:
                d = raw()
            except Exception as e:
                self.log.failure("probe of {backend} raised", backend=name)
                d = Deferred()
                d.callback(ProbeResult(False, "L4CON", f"internal error: {e}"))
                return d

            def unexpected(f: Failure) -> Any:
                if f.check(CancelledError):
                    return f
                self.log.failure("probe of {backend} failed unexpectedly", f, backend=name)
                return ProbeResult(False, "L4CON", f"internal error: {f.getErrorMessage()}")

            guarded: Deferred[ProbeResult] = d.addErrback(unexpected)
            return guarded

        return probe

    def close(self) -> None:
        self.pingers.close()
        if self.netns is not None:
            self.netns.close()


__all__ = ["Probe", "ProbeFactory", "ProbeResult"]
