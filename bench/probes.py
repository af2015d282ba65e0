"""Health-checking throughput: N loopback backends probed at 1 s by the real HealthService.

    python bench/probes.py                      # N = 1000, 5000, 10000; tcp and http; 30 s each
    python bench/probes.py --sizes 1000 --types tcp --duration 10
    python bench/probes.py --sizes 1000 --types dns,grpc      # the newer check types
    python bench/probes.py --sizes 50,200 --types exec        # /bin/true per probe: the cost of a run
    python bench/probes.py --sizes 50000,100000 --types tcp --netns   # past the open-files limit

The backends run in a child process (a selectors loop that accepts, answers
HTTP with 200 and closes), so only the checker's own CPU is measured. Per
size and type it prints probes/s achieved against scheduled, CPU seconds per
1,000 probes (user+sys of the checker process), p50/p99 start lateness of every
probe in the window (how late it started after it was due: the checker's
maglev_probe_start_lateness_seconds histogram, read as a scrape reads it, the
quantiles interpolated within its buckets as Prometheus does) and RSS (while probing,
and after one full scrape at the end, whose text the heap may keep). Counts
come from the probers, as a metrics scrape reads them, not from probe
observers: an observer would bring every probe back to Python.

With --netns (the default from 20,000 backends when root with ``ip``), the bench
creates a network namespace, the backends are one wildcard listener inside it
(every 127/8 address is local there), and the checker probes from inside it
(``healthchecker.netns``): no listener per backend, so no open-files limit on N.
DNS keeps one socket per address (a UDP answer must come from the address asked).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import multiprocessing
import os
import resource
import selectors
import signal
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

# Not this directory: bench/grpc.py would stand in for grpcio in the measured process.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from maglev.limits import raise_open_files  # noqa: E402
from test.netns import namespace, skip_reason  # noqa: E402  # the tests' namespaces, made and deleted alike

PORT = 8000
RESPONSE = b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nok\n"


FIRST = ipaddress.ip_address("127.1.0.1")
WILDCARD_KINDS = ("tcp", "http", "grpc", "icmp", "exec")  # served by one listener (or none)


def address(i: int) -> str:
    return str(FIRST + i)


def enter_netns(name: str | None) -> None:
    """This process from now on in the namespace (the backends' child)."""
    if name is None:
        return
    import ctypes

    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    if ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) != 0:
        raise OSError(ctypes.get_errno(), f"setns {name}")
    os.close(fd)


def listener(host: str, port: int, backlog: int) -> socket.socket:
    """A non-blocking listening socket on ``host``:``port``."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(backlog)
    s.setblocking(False)
    return s


# A DNS answer to any one-question query without EDNS (dnspython's default): our id and
# question back, QR RD RA, one A record 127.0.0.1 (a pointer to the question's name).
DNS_FLAGS = b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00"
DNS_ANSWER = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x7f\x00\x00\x01"


def serve_dns(n: int, ready: Any) -> None:
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    sel = selectors.DefaultSelector()
    for i in range(n):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind((address(i), PORT))
        u.setblocking(False)
        sel.register(u, selectors.EVENT_READ)
    ready.set()
    while True:
        for key, _ in sel.select():
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            try:
                q, peer = sock.recvfrom(512)
                sock.sendto(q[:2] + DNS_FLAGS + q[12:] + DNS_ANSWER, peer)
            except OSError:
                pass


def serve_grpc(n: int, ready: Any, wildcard: bool = False) -> None:
    """grpcio's own server with the standard health servicer on every backend address."""
    from concurrent import futures

    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    for where in [f"0.0.0.0:{PORT}"] if wildcard else [f"{address(i)}:{PORT}" for i in range(n)]:
        server.add_insecure_port(where)
    server.start()
    ready.set()
    server.wait_for_termination()


def serve_backends(n: int, ready: Any, kind: str = "tcp", netns: str | None = None) -> None:
    """Child process: N listeners (or one wildcard listener in ``netns``); TCP probes are
    accepted and closed, HTTP ones answered."""
    raise_open_files()
    enter_netns(netns)
    wildcard = netns is not None and kind in WILDCARD_KINDS
    if kind == "dns":
        return serve_dns(n, ready)
    if kind == "grpc":
        return serve_grpc(n, ready, wildcard)
    if kind in ("exec", "icmp"):
        ready.set()  # the program is the backend; loopback answers pings itself
        signal.pause()
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    sel = selectors.DefaultSelector()
    hosts = ["0.0.0.0"] if wildcard else [address(i) for i in range(n)]
    for host in hosts:
        sel.register(listener(host, PORT, 4096 if wildcard else 1024), selectors.EVENT_READ, "listen")
    ready.set()
    while True:
        for key, _ in sel.select():
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            if key.data == "listen":
                while True:
                    try:
                        conn, _ = sock.accept()
                    except BlockingIOError:
                        break
                    conn.setblocking(False)
                    sel.register(conn, selectors.EVENT_READ, "conn")
            else:
                try:
                    data = sock.recv(4096)
                    if data:
                        sock.send(RESPONSE)
                except OSError:
                    pass
                sel.unregister(sock)
                sock.close()


@contextmanager
def backends_up(n: int, kind: str = "tcp", netns: bool | None = None) -> Iterator[str | None]:
    """N backends served by a child process, on one wildcard listener in a namespace made for
    them (``netns``; None: when root and ``ip`` allow it) or on loopback listeners: the
    namespace's name, or None."""
    raise_open_files()
    with ExitStack() as stack:
        name = stack.enter_context(namespace()) if (skip_reason() is None if netns is None else netns) else None
        ctx = multiprocessing.get_context("spawn")
        ready = ctx.Event()
        server = ctx.Process(target=serve_backends, args=(n, ready, kind, name), daemon=True)
        server.start()
        try:
            if not ready.wait(120):
                raise RuntimeError("backends did not start")
            yield name
        finally:
            server.terminate()
            server.join(10)


def config_for(n: int, kind: str, netns: str | None = None) -> Any:
    from maglev.config import (
        Backend,
        CheckType,
        Config,
        DnsParams,
        ExecParams,
        GrpcParams,
        HealthCheck,
        HttpParams,
        IcmpParams,
        TcpParams,
    )
    from maglev.config.model import HealthCheckerSettings, Params, frozen_map

    by_kind: dict[str, Params] = {
        "http": HttpParams(path="/healthz"), "dns": DnsParams(query="bench.example."), "grpc": GrpcParams(),
        "exec": ExecParams(command=("/bin/true",)), "icmp": IcmpParams(),
    }  # fmt: skip
    params = by_kind.get(kind, TcpParams())
    hc = HealthCheck(
        kind, CheckType(kind), port=None if kind in ("exec", "icmp") else PORT, interval=1.0, fast_interval=1.0,
        down_interval=1.0, timeout=1.0, rise=2, fall=3, params=params,
    )  # fmt: skip
    backends = {f"b{i}": Backend(f"b{i}", ipaddress.ip_address(address(i)), kind) for i in range(n)}
    return Config(
        healthchecker=HealthCheckerSettings(netns=netns), healthchecks=frozen_map({kind: hc}),
        backends=frozen_map(backends),
    )  # fmt: skip


def quantile(q: float, bounds: tuple[float, ...], counts: list[int]) -> float:
    """The q-quantile of a histogram (counts by bounds, then +Inf), interpolated linearly
    within its bucket as Prometheus's histogram_quantile does."""
    total = sum(counts)
    if not total:
        return 0.0
    rank, seen = q * total, 0
    for i, n in enumerate(counts):
        if seen + n >= rank and n:
            if i == len(bounds):  # +Inf: the highest finite bound is all we know
                return bounds[-1]
            low = bounds[i - 1] if i else 0.0
            return low + (bounds[i] - low) * (rank - seen) / n
        seen += n
    return bounds[-1]


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cpu_user() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_utime


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(n: int, kind: str, duration: float, warmup: float, netns: str | None = None) -> dict[str, Any]:
    """Runs in its own process so reactor, CPU and RSS figures are per case."""
    if os.environ.get("BENCH_REACTOR") == "epoll":  # for comparison only: maglevd runs on asyncio
        from twisted.internet import epollreactor

        epollreactor.install()
    else:
        from twisted.internet import asyncioreactor

        asyncioreactor.install()
    from twisted.internet import reactor

    from maglev.bus import EventBus
    from maglev.health.lateness import LATENESS_BUCKETS
    from maglev.health.metrics import HealthMetrics
    from maglev.health.service import HealthService
    from maglev.metrics import MaglevMetrics

    raise_open_files()
    metrics, bus = MaglevMetrics(), EventBus()
    svc = HealthService(config_for(n, kind, netns), bus, reactor)
    health_metrics = HealthMetrics(svc.view)
    health_metrics.watch(bus)  # wired as in maglevd
    state: dict[str, Any] = {}

    def totals() -> tuple[int, dict[str, int]]:
        """Probes sent and failures by code, over every backend (each prober brought up to date,
        as a scrape does): counted this way, the autopilot's probes stay off the Python path."""
        sent, failed = 0, dict[str, int]()
        for b in svc.view:
            sent += b.probes_sent
            for (ok, code), count in b.results.items():
                if not ok:
                    failed[code] = failed.get(code, 0) + count
        return sent, failed

    def scrape() -> None:
        """What a scrape of the checker's metrics costs, timed once at the end (a scrape reads
        every backend: it is not what this bench measures)."""
        t = time.perf_counter()
        list(metrics.registry.collect())
        health_metrics.text()
        state["scrape_s"] = time.perf_counter() - t

    def start_measuring() -> None:
        state["sent0"], state["failed0"] = totals()
        state["late0"] = svc.view.start_lateness()[0]
        state["cpu0"], state["user0"], state["t0"] = cpu(), cpu_user(), time.monotonic()

    def stop_measuring() -> None:
        state["cpu1"], state["user1"], state["t1"] = cpu(), cpu_user(), time.monotonic()
        state["rss_probing"] = rss_mib()  # before the scrape, whose text the heap may keep
        state["late1"] = svc.view.start_lateness()[0]
        state["sent1"], state["failed1"] = totals()
        details: dict[str, int] = {}
        for b in svc.view:  # what the failing ones last said
            if b.last_result is not None and not b.last_result.ok:
                key = f"{b.last_result.code} {b.last_result.detail}"
                details[key] = details.get(key, 0) + 1
        state["details"] = dict(sorted(details.items(), key=lambda kv: -kv[1])[:3])
        scrape()
        svc.stopService()
        reactor.stop()

    from maglev.gcpolicy import LongLivedObjects

    long_lived = LongLivedObjects()
    reactor.callWhenRunning(svc.startService)
    reactor.callWhenRunning(long_lived.settle)  # as maglevd does once its services are up (full)
    reactor.callLater(warmup * 0.8, long_lived.settle)  # and once the first transitions are done
    reactor.callLater(warmup, start_measuring)
    reactor.callLater(warmup + duration, stop_measuring)
    # No signal handlers: the pool ends this worker with SIGTERM, and a stopped reactor's
    # handler would swallow it (the bench then hung in Pool.terminate, once in 16 cases).
    reactor.run(installSignalHandlers=False)  # type: ignore[call-arg]  # ReactorBase takes it
    elapsed = state["t1"] - state["t0"]
    late = [b - a for a, b in zip(state["late0"], state["late1"], strict=True)]
    probes = state["sent1"] - state["sent0"]
    codes = {c: n - state["failed0"].get(c, 0) for c, n in state["failed1"].items() if n > state["failed0"].get(c, 0)}
    return {
        "backends": n,
        "type": kind,
        "seconds": round(elapsed, 2),
        "probes_per_s": round(probes / elapsed, 1),
        "scheduled_per_s": float(n),  # every backend at 1 s
        "failed": sum(codes.values()),
        "failure_codes": codes,
        "cpu_s_per_1000": round((state["cpu1"] - state["cpu0"]) / probes * 1000, 4) if probes else None,
        "cpu_share": round((state["cpu1"] - state["cpu0"]) / elapsed, 3),
        "user_share": round((state["user1"] - state["user0"]) / elapsed, 3),
        "started": sum(late),  # probes whose start lateness was counted: every one in the window
        "lateness_p50_ms": round(quantile(0.5, LATENESS_BUCKETS, late) * 1000, 2),
        "lateness_p99_ms": round(quantile(0.99, LATENESS_BUCKETS, late) * 1000, 2),
        "rss_mib": round(state["rss_probing"], 1),
        "rss_after_scrape_mib": round(rss_mib(), 1),
        "scrape_ms": round(state["scrape_s"] * 1000, 1),
        "failing_last_said": state["details"],
    }


def run_case(n: int, kind: str, duration: float, warmup: float, use_netns: bool = False) -> dict[str, Any]:
    with backends_up(n, kind, use_netns) as name, multiprocessing.get_context("spawn").Pool(1) as pool:
        result: dict[str, Any] = pool.apply(measure, (n, kind, duration, warmup, name))
    result["netns"] = name is not None
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,5000,10000")
    parser.add_argument("--types", default="tcp,http")
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--json", action="store_true", help="one JSON object per case")
    parser.add_argument(
        "--netns", action=argparse.BooleanOptionalAction, default=None,
        help="backends on one wildcard listener in a namespace the bench creates (default: from 20,000 when root)",
    )  # fmt: skip
    args = parser.parse_args()
    why_not = skip_reason()
    if args.netns and why_not:
        parser.error(f"--netns {why_not}")
    header = (
        f"{'type':5} {'N':>6} {'probes/s':>9} {'sched/s':>8} {'fail':>6} {'CPU s/1000':>10} {'CPU':>6} "
        f"{'user':>6} {'late p50':>9} {'late p99':>9} {'RSS MiB':>8}"
    )
    if not args.json:
        print(
            f"# {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
            f"{args.duration:g}s per case after {args.warmup:g}s warm-up"
        )
        print(header)
    for kind in args.types.split(","):
        for n in (int(x) for x in args.sizes.split(",")):
            use_netns = args.netns if args.netns is not None else (n >= 20000 and why_not is None)
            r = run_case(n, kind, args.duration, args.warmup, use_netns)
            if args.json:
                print(json.dumps(r), flush=True)
                continue
            print(
                f"{kind:5} {n:>6} {r['probes_per_s']:>9} {r['scheduled_per_s']:>8.0f} {r['failed']:>6} "
                f"{r['cpu_s_per_1000']:>10} {r['cpu_share']:>6} {r['user_share']:>6} "
                f"{r['lateness_p50_ms']:>8}ms {r['lateness_p99_ms']:>8}ms "
                f"{r['rss_mib']:>8}  scrape {r['scrape_ms']} ms, RSS {r['rss_after_scrape_mib']} after it"
                + ("  (netns)" if r["netns"] else ""),
                flush=True,
            )
            if r["failure_codes"]:
                print(f"      failures: {r['failure_codes']}; the failing backends last said {r['failing_last_said']}")


if __name__ == "__main__":
    main()
