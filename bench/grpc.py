"""The gRPC API under load: ListBackends with 10,000 backends; WatchEvents fan-out to 100 subscribers.

    python bench/grpc.py                               # 10,000 backends, 100 subscribers, 200 events
    python bench/grpc.py --backends 1000 --subscribers 10 --events 50

maglevd runs as its own process (VPP off, backends on closed loopback ports so
every probe is a quick refusal). Prints ListBackends latency (p50/p99 over
--calls calls, response size), then the delivery latency of backend events:
the bench disables and enables a backend over the API, which publishes a
BackendTransition on the daemon's bus stamped with the wall clock; each of the
subscribers (spread over two client processes, grpc.aio) notes how long after
that stamp the event arrived. Same host, same clock.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# This file is called grpc.py: its own directory must not shadow the grpc package.
sys.path[:] = [str(HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]

import grpc  # noqa: E402

from maglev.api.gen.maglev.v1 import maglev_pb2 as pb  # noqa: E402
from maglev.api.gen.maglev.v1 import maglev_pb2_grpc as pb_grpc  # noqa: E402
from test.helpers import Daemon  # noqa: E402  # maglevd as a child process, its JSON log on a queue

PER_FRONTEND = 100


def config(backends: int, per_frontend: int = PER_FRONTEND) -> str:
    lines = [
        "maglev:",
        "  vpp:",
        "    lb: {ipv4-src-address: 192.0.2.254}",
        "  healthchecks:",
        "    closed: {type: tcp, port: 9, interval: 30s, fast-interval: 30s, down-interval: 30s}",
        "  backends:",
    ]
    lines += [f"    b{i}: {{address: 127.3.{i // 250}.{i % 250 + 1}, healthcheck: closed}}" for i in range(backends)]
    lines.append("  frontends:")
    for f in range(0, backends, per_frontend):
        n = f // per_frontend
        members = ", ".join(f"b{i}: {{}}" for i in range(f, min(f + per_frontend, backends)))
        lines += [
            f"    f{n}:",
            f"      address: 198.19.{n // 250}.{n % 250 + 1}",
            "      protocol: tcp",
            "      port: 80",
            f"      pools: [{{name: primary, backends: {{{members}}}}}]",
        ]
    return "\n".join(lines) + "\n"


def quantiles(values: list[float]) -> tuple[float, float]:
    values = sorted(values)
    return statistics.median(values), values[min(len(values) - 1, int(len(values) * 0.99))]


def subscribe(address: str, count: int, events: int, ready: Any, out: Any) -> None:
    """One client process: ``count`` streams; for each received event, arrival minus its bus stamp."""

    async def main() -> list[float]:
        delays: list[float] = []
        async with grpc.aio.insecure_channel(address) as channel:
            stub = pb_grpc.MaglevStub(channel)

            async def one() -> None:
                seen = 0
                async for event in stub.WatchEvents(pb.WatchRequest(backend=True)):
                    delays.append(time.time() - event.time)
                    seen += 1
                    if seen >= events:
                        return

            tasks = [asyncio.ensure_future(one()) for _ in range(count)]
            await channel.channel_ready()
            await asyncio.sleep(0.5)  # let every stream register before the bench starts publishing
            ready.set()
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=300)
        return delays

    out.put(asyncio.run(main()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", type=int, default=10_000)
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--subscribers", type=int, default=100)
    ap.add_argument("--events", type=int, default=200)
    ap.add_argument("--gap", type=float, default=0.02, help="seconds between published events")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "maglev.yaml"
        cfg.write_text(config(args.backends))
        daemon = Daemon(
            ["--config", str(cfg), "--metrics-addr", "", "--vpp-api-addr", "", "--grpc-addr", "127.0.0.1:0"]
        )
        try:
            address = daemon.event("listening", timeout=120, service="grpc")["address"]
            channel = grpc.insecure_channel(address)
            stub = pb_grpc.MaglevStub(channel)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # the first probe of every backend has answered
                try:
                    r = stub.ListBackends(pb.ListBackendsRequest(), timeout=30)
                except grpc.RpcError as e:  # a busy start (10,000 first probes) may miss a deadline
                    print(f"waiting for the first probes: {e.code().name}", file=sys.stderr)
                    continue
                if all(b.last_probe.code for b in r.backends):
                    break
            samples = []
            size = 0
            for _ in range(args.calls):
                t0 = time.perf_counter()
                r = stub.ListBackends(pb.ListBackendsRequest(), timeout=30)
                samples.append(time.perf_counter() - t0)
                size = r.ByteSize()
            p50, p99 = quantiles(samples)
            print(
                f"ListBackends, {len(r.backends):,} backends ({size / 1e6:.1f} MB): "
                f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms over {args.calls} calls"
            )
            paged = []  # one page of 500, the next token in hand: what a paging client pays per call
            for _ in range(args.calls):
                t0 = time.perf_counter()
                stub.ListBackends(pb.ListBackendsRequest(page_size=500), timeout=30)
                paged.append(time.perf_counter() - t0)
            p50, p99 = quantiles(paged)
            print(
                f"ListBackends, a page of 500: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms over {args.calls} calls"
            )

            ctx = multiprocessing.get_context("spawn")
            out = ctx.Queue()
            procs, readies = [], []
            halves = [args.subscribers // 2, args.subscribers - args.subscribers // 2]
            for n in halves:
                ready = ctx.Event()
                p = ctx.Process(target=subscribe, args=(address, n, args.events, ready, out))
                p.start()
                procs.append(p)
                readies.append(ready)
            for ready in readies:
                if not ready.wait(60):
                    raise RuntimeError("subscribers did not connect")
            for i in range(args.events):
                action = stub.DisableBackend if i % 2 == 0 else stub.EnableBackend
                action(pb.BackendRequest(name="b0"), timeout=30)
                time.sleep(args.gap)  # pacing the publisher, not waiting for a result
            delays: list[float] = []
            for _ in procs:
                delays += out.get(timeout=300)
            for p in procs:
                p.join(30)
            p50, p99 = quantiles(delays)
            print(
                f"WatchEvents, {args.subscribers} subscribers x {args.events} events ({len(delays):,} deliveries): "
                f"bus to client p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms, max {max(delays) * 1000:.2f} ms"
            )
            channel.close()
        finally:
            daemon.stop(30)
            daemon.kill()


if __name__ == "__main__":
    main()
