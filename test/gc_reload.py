"""A scenario test_gcpolicy.py runs in a fresh interpreter: a health checker and the VPP
sync (VPP off) take three reloads, and after each one this prints which maglev objects
only a full collection would free (a JSON list per reload: [] when none).

    python -m test.gc_reload

Its own process, so nothing another test left behind dies during it and shows up here.
"""

from __future__ import annotations

import gc
import json
import socket
from typing import Any

BACKENDS = 20


def config(port: int, prefix: str = "b", interval: str = "50ms") -> str:
    members = ", ".join(f"{prefix}{i}: {{}}" for i in range(BACKENDS))
    return (
        "\n".join(
            [
                "maglev:",
                "  vpp:",
                "    lb: {ipv4-src-address: 192.0.2.254}",
                "  healthchecks:",
                f"    hc: {{type: tcp, port: {port}, interval: {interval}, fast-interval: 20ms, down-interval: 50ms,"
                " timeout: 200ms, rise: 2, fall: 3}",
                "  backends:",
                *(f"    {prefix}{i}: {{address: 127.0.0.1, healthcheck: hc}}" for i in range(BACKENDS)),
                "  frontends:",
                "    web: {address: 192.0.2.1, protocol: tcp, port: 80, pools: [{name: p, backends: {"
                + members
                + "}}]}",
            ]
        )
        + "\n"
    )


def frozen_now() -> None:
    """Everything that lives frozen, as maglevd leaves it after its start or a reload."""
    gc.collect()
    gc.freeze()


def cyclic_garbage() -> list[str]:
    """After the collection of what is not frozen (the one a reload gets), what a full one
    still finds; frozen again after."""
    gc.collect()
    gc.unfreeze()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        return sorted({type(o).__qualname__ for o in gc.garbage if type(o).__module__.startswith("maglev")})
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        frozen_now()


async def scenario(reactor: Any) -> None:
    from twisted.internet.task import deferLater

    from maglev.bus import EventBus
    from maglev.config import load_config
    from maglev.dataplane.service import LbSync
    from maglev.health.service import HealthService

    async def until(names: list[str]) -> None:
        for _ in range(500):  # 10 ms each: at most 5 s
            if all(health.probers[n].autopilot for n in names):
                return
            await deferLater(reactor, 0.01, lambda: None)
        raise RuntimeError(f"not every backend of {names} is up on the engine within 5 s")

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    number = server.getsockname()[1]
    bus = EventBus()
    first = load_config(config(number))
    health = HealthService(first, bus, reactor)
    lbsync = LbSync(first, bus, reactor, health.view.states, "", "", None)
    health.startService()
    lbsync.startService()
    try:
        await until(list(first.backends))
        frozen_now()
        # Every backend removed (kept as removed), then added back (the removed ones are
        # dropped), then each one's check changed (probed anew).
        for text in (config(number, "c"), config(number), config(number, interval="60ms")):
            new = load_config(text)
            health.reconfigure(new)
            lbsync.reconfigure(new)
            await until(list(new.backends))
            print(json.dumps(cyclic_garbage()), flush=True)
    finally:
        lbsync.stopService()
        health.stopService()
        server.close()


def main() -> None:
    from twisted.internet import asyncioreactor

    asyncioreactor.install()  # as maglevd runs
    from twisted.internet.defer import ensureDeferred
    from twisted.internet.task import react

    react(lambda reactor: ensureDeferred(scenario(reactor)))


if __name__ == "__main__":
    main()
