"""Run one probe the way maglevd does (a ProbeFactory, the check's own probe), then tidy up."""

from __future__ import annotations

import ipaddress
from typing import Any

from maglev.config import Backend, HealthCheck
from maglev.health.probes import ProbeFactory, run
from maglev.health.state import ProbeResult


def reactor() -> Any:
    from twisted.internet import reactor as r

    return r


async def probe_once(hc: HealthCheck, address: str = "127.0.0.1") -> ProbeResult:
    f = ProbeFactory(reactor())
    p = f.probe_for(Backend("b0", ipaddress.ip_address(address), "hc"), hc)
    try:
        result: ProbeResult = await run(p)
    finally:
        p.close()  # what it keeps between probes (a socket, a connection)
        f.close()
    return result
