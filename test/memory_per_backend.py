"""A scenario test_memory.py runs in a fresh interpreter: a health checker of N backends,
each probed until it has its first result, and the Python heap it added per backend
(tracemalloc, from after the configuration was parsed; the compiled engine's targets
are allocated through Python's allocator, so they count too). Prints one JSON object:

    python -m test.memory_per_backend tcp 2000

Every backend is refused (a closed port on loopback): each keeps a state, a transition,
its last result and its counts, as a backend that is down does.
"""

from __future__ import annotations

import json
import socket
import sys
import tracemalloc
from typing import Any


def config(kind: str, port: int, backends: int) -> str:
    check = f"type: {kind}, port: {port}, interval: 1s, fast-interval: 200ms, down-interval: 1s, timeout: 1s"
    return (
        "\n".join(
            [
                "maglev:",
                "  healthchecks:",
                f"    hc: {{{check}, rise: 2, fall: 3}}",
                "  backends:",
                *(f"    b{i}: {{address: 127.0.0.1, healthcheck: hc}}" for i in range(backends)),
            ]
        )
        + "\n"
    )


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()  # nothing listens there: every connect is refused at once
    return port


async def scenario(reactor: Any, kind: str, backends: int) -> None:
    from twisted.internet.task import deferLater

    from maglev.bus import EventBus
    from maglev.config import load_config
    from maglev.health.service import HealthService

    cfg = load_config(config(kind, closed_port(), backends))
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    health = HealthService(cfg, EventBus(), reactor)
    health.startService()
    try:
        for _ in range(1000):  # 10 ms each: at most 10 s
            if all(b.last_result is not None for b in health.view):
                break
            await deferLater(reactor, 0.01, lambda: None)
        else:
            raise RuntimeError("not every backend has a result within 10 s")
        added = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
    finally:
        health.stopService()
        tracemalloc.stop()
    print(json.dumps({"kind": kind, "backends": backends, "bytes_per_backend": added / backends}), flush=True)


def main() -> None:
    from twisted.internet import asyncioreactor

    asyncioreactor.install()  # as maglevd runs
    from twisted.internet.defer import ensureDeferred
    from twisted.internet.task import react

    kind, backends = sys.argv[1], int(sys.argv[2])
    react(lambda reactor: ensureDeferred(scenario(reactor, kind, backends)))


if __name__ == "__main__":
    main()
