"""The gRPC API under load: ListBackends with 10,000 backends; WatchEvents fan-out to 100 subscribers.

    python bench/grpc.py                               # 10,000 backends, 100 subscribers, 200 events
    python bench/grpc.py --backends 1000 --subscribers 10 --events 50
    python bench/grpc.py --probing                     # reads while 10,000 backends are probed at 1 s

maglevd runs as its own process (VPP off, backends on closed loopback ports so
every probe is a quick refusal). Prints ListBackends latency (p50/p99 over
--calls calls, response size), then the delivery latency of backend events:
the bench disables and enables a backend over the API, which publishes a
BackendTransition on the daemon's bus stamped with the wall clock; each of the
subscribers (spread over two client processes, grpc.aio) notes how long after
that stamp the event arrived. Same host, same clock.

With --probing the backends are up instead (loopback listeners: one wildcard
listener in a network namespace the bench creates, when root), every one checked
at 1 s, and the bench reads what that costs the probes from outside the daemon:
in windows of --window seconds (no reads; ListBackends of every backend once a
second; a page of 500 once a second; a full /metrics scrape every 5 s) it
scrapes /metrics at each end for maglev_probe_start_lateness_seconds (every
probe's start lateness; quantiles interpolated in its buckets) and reads the
daemon's CPU from /proc, and times the calls it made.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
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
PROBE_PORT = 8000


def config(backends: int, per_frontend: int = PER_FRONTEND, netns: str | None = None, probing: bool = False) -> str:
    from bench.probes import address

    lines = [
        "maglev:",
        "  vpp:",
        "    lb: {ipv4-src-address: 192.0.2.254}",
        *([f"  healthchecker: {{netns: {netns}}}"] if netns else []),
        "  healthchecks:",
        "    closed: {type: tcp, port: 9, interval: 30s, fast-interval: 30s, down-interval: 30s}",
        f"    up: {{type: tcp, port: {PROBE_PORT}, interval: 1s, fast-interval: 1s, down-interval: 1s, timeout: 1s}}",
        "  backends:",
    ]
    if probing:
        lines += [f"    b{i}: {{address: {address(i)}, healthcheck: up}}" for i in range(backends)]
    else:
        lines += [
            f"    b{i}: {{address: 127.3.{i // 250}.{i % 250 + 1}, healthcheck: closed}}" for i in range(backends)
        ]
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


def scrape_lateness(metrics: str) -> list[int]:
    """maglev_probe_start_lateness_seconds from /metrics: counts per bucket (not cumulative)."""
    import re

    # That family alone: a full scrape of 10,000 backends would stall the probes for seconds.
    url = f"http://{metrics}/metrics?name[]=maglev_probe_start_lateness_seconds"
    text = urllib.request.urlopen(url, timeout=30).read().decode()
    cumulative = [float(m) for m in re.findall(r'^maglev_probe_start_lateness_seconds_bucket\{le="[^"]+"\} (\S+)$',
                                                text, re.M)]  # fmt: skip
    return [int(b - a) for a, b in zip([0.0, *cumulative], cumulative, strict=False)]


def reads_while_probing(args: argparse.Namespace) -> None:
    from bench.peers import cpu_times
    from bench.probes import backends_up, quantile
    from maglev.health.lateness import LATENESS_BUCKETS

    with backends_up(args.backends) as name:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = Path(tmp) / "maglev.yaml"
            cfg.write_text(config(args.backends, netns=name, probing=True))
            daemon = Daemon(["--config", str(cfg), "--metrics-addr", "127.0.0.1:0", "--vpp-api-addr", "",
                             "--grpc-addr", "127.0.0.1:0", "--web-addr", ""])  # fmt: skip
            try:
                at: dict[str, str] = {}
                while len(at) < 2:  # in whichever order they come
                    rec = daemon.wait_for(
                        lambda r: r.get("event") == "listening" and r.get("service") in ("grpc", "metrics-http"), 120
                    )
                    at[rec["service"]] = rec["address"]
                grpc_at, metrics_at = at["grpc"], at["metrics-http"]
                stub = pb_grpc.MaglevStub(grpc.insecure_channel(grpc_at))
                deadline = time.monotonic() + 180
                while time.monotonic() < deadline:
                    up = stub.ListBackends(pb.ListBackendsRequest(page_size=1, state=["up"]), timeout=30).total
                    if up == args.backends:
                        break
                    time.sleep(1.0)  # a bench waiting for the rise of 10,000 backends, not a test
                time.sleep(3.0)  # steady state: every backend on autopilot
                print(f"{args.backends:,} TCP backends up, checked at 1 s{' (netns)' if name else ''}")

                def full_scrape() -> object:
                    return urllib.request.urlopen(f"http://{metrics_at}/metrics", timeout=60).read()

                kinds: list[tuple[str, Callable[[], object] | None, float]] = [
                    ("no reads", None, 1.0),
                    ("ListBackends, all", lambda: stub.ListBackends(pb.ListBackendsRequest(), timeout=30), 1.0),
                    ("ListBackends, a page of 500",
                     lambda: stub.ListBackends(pb.ListBackendsRequest(page_size=500), timeout=30), 1.0),
                    ("/metrics in full, every 5 s", full_scrape, 5.0),
                ]  # fmt: skip
                for label, read, period in kinds:
                    before, cpu0, t0 = scrape_lateness(metrics_at), sum(cpu_times(daemon.proc.pid)), time.monotonic()
                    calls: list[float] = []
                    while time.monotonic() - t0 < args.window:
                        tick = time.monotonic()
                        if read is not None:
                            read()
                            calls.append(time.monotonic() - tick)
                        time.sleep(max(0.0, period - (time.monotonic() - tick)))  # one read a period
                    after, cpu1, t1 = scrape_lateness(metrics_at), sum(cpu_times(daemon.proc.pid)), time.monotonic()
                    late = [b - a for a, b in zip(before, after, strict=True)]
                    timed = ""
                    if calls:
                        c50, c99 = quantiles(calls)
                        timed = f"; the call p50 {c50 * 1000:.1f} ms, p99 {c99 * 1000:.1f} ms"
                    print(
                        f"{label:<28} probe start lateness p50 {quantile(0.5, LATENESS_BUCKETS, late) * 1000:5.1f} ms, "
                        f"p99 {quantile(0.99, LATENESS_BUCKETS, late) * 1000:5.1f} ms over {sum(late):,} probes; "
                        f"daemon {(cpu1 - cpu0) / (t1 - t0):.3f} of a core{timed}",
                        flush=True,
                    )
            finally:
                daemon.stop(30)
                daemon.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", type=int, default=10_000)
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--subscribers", type=int, default=100)
    ap.add_argument("--events", type=int, default=200)
    ap.add_argument("--gap", type=float, default=0.02, help="seconds between published events")
    ap.add_argument("--probing", action="store_true", help="the backends up and probed: what reads cost the probes")
    ap.add_argument("--window", type=float, default=20.0, help="--probing: seconds per measured window")
    args = ap.parse_args()
    if args.probing:
        reads_while_probing(args)
        return

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
