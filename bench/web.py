"""The web UI under load: rendering /view/ for 100 frontends x 20 backends; SSE fan-out to 50 clients.

    python bench/web.py                              # 100 x 20, 50 SSE clients, 200 events
    python bench/web.py --frontends 10 --clients 5 --events 50

maglevd runs as its own process with its web UI (VPP off, backends on closed
loopback ports so every probe is a quick refusal). Prints:
  - the daemon's warm-up read and render at start, then the first visitor's render;
  - /view/ rendered from fresh state (the cache is more than a second old, so
    each request reads the daemon through the API again): while the backends make
    their first probes (the first 30 s), then once every backend has been probed,
    with the daemon's CPU for each of those loads (its CPU over the loads, less
    what it spent over as long before them, idle but for its probes); and from
    the cache;
  - event delivery: the bench disables and enables a backend over gRPC, which
    stamps a BackendTransition with the wall clock; each SSE client notes how
    long after that stamp the event arrived on /view/api/events. Same host.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [str(HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]

import grpc  # noqa: E402

from bench.grpc import config, quantiles  # noqa: E402
from maglev.api.gen.maglev.v1 import maglev_pb2 as pb  # noqa: E402
from maglev.api.gen.maglev.v1 import maglev_pb2_grpc as pb_grpc  # noqa: E402
from test.helpers import Daemon  # noqa: E402


def cpu_seconds(pid: int) -> float:
    """The process's user and system CPU so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def get(url: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as r:
        size = len(r.read())
    return time.perf_counter() - t0, size


async def sse_clients(host: str, port: int, clients: int, events: int, start: asyncio.Event) -> list[float]:
    delays: list[float] = []

    async def one() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"GET /view/api/events HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        await writer.drain()
        seen = 0
        kind = b""
        while seen < events:
            line = await reader.readline()
            if line.startswith(b"event: "):
                kind = line[7:].strip()
            elif line.startswith(b"data: ") and kind == b"backend":
                delays.append(time.time() - json.loads(line[6:])["time"])
                seen += 1
        writer.close()

    tasks = [asyncio.ensure_future(one()) for _ in range(clients)]
    await asyncio.sleep(1.0)  # every stream open before the events start
    start.set()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=300)
    return delays


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frontends", type=int, default=100)
    ap.add_argument("--per-frontend", type=int, default=20)
    ap.add_argument("--renders", type=int, default=20)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--events", type=int, default=200)
    ap.add_argument("--gap", type=float, default=0.02, help="seconds between published events")
    ap.add_argument("--idle", type=float, default=15.0, help="seconds of the daemon's idle CPU, before the fresh loads")
    args = ap.parse_args()
    backends = args.frontends * args.per_frontend

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "maglev.yaml"
        cfg.write_text(config(backends, args.per_frontend))
        daemon = Daemon(
            ["--config", str(cfg), "--metrics-addr", "", "--vpp-api-addr", "", "--grpc-addr", "127.0.0.1:0"]
            + ["--web-addr", "127.0.0.1:0"]
        )
        try:
            web = daemon.event("listening", timeout=120, service="web-http")["address"]
            grpc_addr = daemon.event("listening", timeout=120, service="grpc")["address"]
            ready = daemon.event("web-ready", timeout=120)
            url = f"http://{web}/view/"
            first, size = get(url)
            print(
                f"/view/ with {args.frontends} frontends x {args.per_frontend} backends ({size / 1e6:.2f} MB): "
                f"first render {first * 1000:.0f} ms (the start's own warm-up render: {ready['ms']:.0f} ms)"
            )
            stub = pb_grpc.MaglevStub(grpc.insecure_channel(grpc_addr))
            unknown = pb.ListBackendsRequest(state=["unknown"], page_size=1)
            # Each backend's first probe comes within its first interval (30 s): until then
            # every read also competes with the first transitions, their log lines and events.
            warming: list[float] = []
            while len(warming) < args.renders and stub.ListBackends(unknown, timeout=10).total:
                time.sleep(1.1)  # older than the state cache's second: each render reads the daemon again
                warming.append(get(url)[0])
            deadline = time.monotonic() + 120
            while stub.ListBackends(unknown, timeout=10).total:
                if time.monotonic() > deadline:
                    raise SystemExit("backends still unknown after 120 s")
                time.sleep(0.5)
            pid = daemon.proc.pid
            idle_from, idle_cpu = time.monotonic(), cpu_seconds(pid)
            time.sleep(args.idle)
            idle = (cpu_seconds(pid) - idle_cpu) / (time.monotonic() - idle_from)  # cores, probing only
            fresh: list[float] = []
            loads_from, loads_cpu = time.monotonic(), cpu_seconds(pid)
            for _ in range(args.renders):
                time.sleep(1.1)
                fresh.append(get(url)[0])
            spent = cpu_seconds(pid) - loads_cpu - idle * (time.monotonic() - loads_from)
            cached = [get(url)[0] for _ in range(5)]
            if warming:
                p50, p99 = quantiles(warming)
                print(f"  fresh state while the backends make their first probes: p50 {p50 * 1000:.0f} ms, "
                      f"p99 {p99 * 1000:.0f} ms over {len(warming)}")  # fmt: skip
            p50, p99 = quantiles(fresh)
            print(
                f"  fresh state, every backend probed: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms over "
                f"{args.renders}; the daemon's CPU {spent / args.renders * 1000:.1f} ms a load "
                f"(idle {idle:.3f} of a core); cached: median {quantiles(cached)[0] * 1000:.0f} ms"
            )

            host, port = web.rsplit(":", 1)

            async def run() -> list[float]:
                start = asyncio.Event()
                clients = asyncio.ensure_future(sse_clients(host, int(port), args.clients, args.events, start))
                await start.wait()
                loop = asyncio.get_running_loop()
                for i in range(args.events):
                    method = stub.DisableBackend if i % 2 == 0 else stub.EnableBackend
                    await loop.run_in_executor(
                        None, functools.partial(method, pb.BackendRequest(name="b0"), timeout=10)
                    )
                    await asyncio.sleep(args.gap)
                return await clients

            delays = asyncio.run(run())
            p50, p99 = quantiles(delays)
            print(
                f"SSE fan-out, {args.clients} clients x {args.events} events: "
                f"delivery p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms, max {max(delays) * 1000:.2f} ms"
            )
        finally:
            daemon.stop()
            daemon.kill()


if __name__ == "__main__":
    main()
