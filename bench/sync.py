"""LB sync against the VPP emulator: full sync, no-drift sync, transition latency.

    python bench/sync.py                       # 1,000 VIPs x 16 ASes, 1,000 transitions
    python bench/sync.py --vips 100 --transitions 200

The emulator runs as its own process; LbSync runs here on the asyncio reactor
with its VPP thread, exactly as in maglevd. Prints the time of a full sync
from an empty VPP, of a full sync with nothing to change, and the added
latency of a backend transition: from publishing the transition on the bus to
LbSync having VPP's reply for every affected VIP (p50/p99), and VPP restarts: the
emulator killed and started again, from its ready line to VPP holding the same state
again (maglevd notices the closed socket by itself; nothing pings it).
"""

from __future__ import annotations

import argparse
import ipaddress
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from twisted.internet import asyncioreactor

asyncioreactor.install()
from twisted.internet import defer, reactor  # noqa: E402

from maglev.bus import EventBus  # noqa: E402
from maglev.config import (  # noqa: E402
    Backend,
    CheckType,
    Config,
    Frontend,
    HealthCheck,
    LbSettings,
    Pool,
    PoolMember,
    Protocol,
)
from maglev.config.model import frozen_map  # noqa: E402
from maglev.dataplane.service import LbSync  # noqa: E402
from maglev.events import BackendTransition, LbSynced  # noqa: E402
from maglev.vppemu.process import start_emulator  # noqa: E402

API_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "vpp-api"


def config(vips: int, per_vip: int) -> Config:
    """VIPs in 198.19.0.0/16, ASes in 198.18.0.0/16 (benchmarking ranges; data only)."""
    hc = HealthCheck("tcp", CheckType.TCP, port=80)
    backends: dict[str, Backend] = {}
    frontends: dict[str, Frontend] = {}
    vip_base, as_base = int(ipaddress.IPv4Address("198.19.0.1")), int(ipaddress.IPv4Address("198.18.0.1"))
    for v in range(vips):
        members = []
        for j in range(per_vip):
            name = f"b{v}-{j}"
            backends[name] = Backend(name, ipaddress.IPv4Address(as_base + v * per_vip + j), "tcp")
            members.append(PoolMember(name, 100))
        frontends[f"vip{v}"] = Frontend(
            f"vip{v}", ipaddress.IPv4Address(vip_base + v), Protocol.TCP, 80, (Pool("p", tuple(members)),)
        )
    lb = LbSettings(
        sync_interval=3600,
        ipv4_src_address=ipaddress.IPv4Address("192.0.2.254"),
        startup_min_delay=0,
        startup_max_delay=0,
    )
    return Config(
        lb=lb, healthchecks=frozen_map({"tcp": hc}), backends=frozen_map(backends), frontends=frozen_map(frontends)
    )


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def run(args: Any, api: str, stats: str) -> None:
    cfg = config(args.vips, args.per_vip)
    states = {name: "up" for name in cfg.backends}
    bus = EventBus()
    sync = LbSync(cfg, bus, reactor, states, api, stats, str(API_DIR))
    first: defer.Deferred[Any] = defer.Deferred()
    bus.subscribe(LbSynced, lambda e: first.callback(e) if not first.called and e.scope == "all" else None)
    t0 = time.perf_counter()
    sync.startService()  # connect, then the first full sync from an empty VPP
    result = await first
    full = time.perf_counter() - t0
    print(f"full sync from empty: {args.vips} VIPs x {args.per_vip} ASes: {full:.2f} s ({result.changes} changes)")
    nodrift = []
    for _ in range(3):
        t0 = time.perf_counter()
        r = await sync.request_sync(full=True)
        nodrift.append(time.perf_counter() - t0)
        assert not r.done and not r.errors, (r.done[:3], r.errors[:3])
    print(f"no-drift full sync: median {statistics.median(nodrift):.3f} s (of 3)")

    latencies = []
    names = list(cfg.backends)
    for i in range(args.transitions):
        backend = names[(i * 7919) % len(names)]
        new = "down" if states[backend] == "up" else "up"
        old, states[backend] = states[backend], new
        done: defer.Deferred[Any] = defer.Deferred()

        def finished(e: LbSynced, d: defer.Deferred[Any] = done) -> None:
            if not d.called and e.scope == "vip":
                d.callback(e)

        sub = bus.subscribe(LbSynced, finished)
        t0 = time.perf_counter()
        bus.publish(BackendTransition(0.0, backend, old, new, "L4OK", "", 0, True))
        synced = await done
        latencies.append(time.perf_counter() - t0)
        sub.cancel()
        assert synced.changes >= 1 and not synced.errors
    ms = [x * 1000 for x in latencies]
    print(
        f"transition -> VPP replied, {args.transitions} transitions: p50 {statistics.median(ms):.2f} ms, "
        f"p99 {percentile(ms, 0.99):.2f} ms, max {max(ms):.2f} ms"
    )
    if args.restarts:
        await restarts(args, sync, bus, api, stats)
    stopped = sync.stopService()
    if stopped is not None:
        await stopped


async def restarts(args: Any, sync: LbSync, bus: EventBus, api: str, stats: str) -> None:
    from twisted.internet.threads import deferToThread

    before = await sync.read_vpp()
    took = []
    for _ in range(args.restarts):
        synced: defer.Deferred[Any] = defer.Deferred()

        def seen(e: LbSynced, d: defer.Deferred[Any] = synced) -> None:
            if not d.called and e.changes:
                d.callback(e)

        sub = bus.subscribe(LbSynced, seen)
        EMULATOR[0].kill()
        EMULATOR[0].wait(10)

        def start() -> float:
            EMULATOR[0] = start_emulator(api, stats, str(API_DIR), "--flavour", args.flavour)
            return time.perf_counter()  # its ready line has been read

        ready = await deferToThread(start)
        await synced
        took.append(time.perf_counter() - ready)
        sub.cancel()
        after = await sync.read_vpp()
        assert {k: sorted(v.ases) for k, v in after[1].items()} == {k: sorted(v.ases) for k, v in before[1].items()}
    runs = ", ".join(f"{t * 1000:.0f}" for t in took)
    print(f"VPP restart: ready -> identical state: median {statistics.median(took) * 1000:.0f} ms ({runs} ms)")


EMULATOR: list[Any] = []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vips", type=int, default=1000)
    parser.add_argument("--per-vip", type=int, default=16)
    parser.add_argument("--transitions", type=int, default=1000)
    parser.add_argument("--restarts", type=int, default=3, help="emulator kills and restarts, 0 for none")
    parser.add_argument("--flavour", choices=["master", "v26.06"], default="master")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        api, stats = f"{tmp}/api.sock", f"{tmp}/stats.sock"
        EMULATOR.append(start_emulator(api, stats, str(API_DIR), "--flavour", args.flavour))
        failures: list[Any] = []

        def go() -> None:
            d = defer.ensureDeferred(run(args, api, stats))
            d.addErrback(failures.append)
            d.addBoth(lambda _: reactor.stop())

        reactor.callWhenRunning(go)
        try:
            reactor.run()
        finally:
            EMULATOR[0].terminate()
            EMULATOR[0].wait(10)
        if failures:
            failures[0].raiseException()


if __name__ == "__main__":
    main()
