"""Does the API answer while maglevd starts, syncs VPP for the first time and reloads?

    python bench/responsive.py                     # 10,000 TCP backends up, 100 VIPs of 100
    python bench/responsive.py --backends 2000

maglevd runs as its own process against the VPP emulator (its own process too), with
--backends TCP backends that are up (one wildcard listener in a network namespace the
bench creates, when root; else loopback listeners), all checked at 1 s, in VIPs of 100.
From the moment the gRPC port listens, a client thread calls GetVersion every 20 ms and
times each answer. The daemon's own log marks the phases: the warm-up (every backend's
first probes, VIPs released as their backends become known), the end of the warm-up and
the full sync that follows, a quiet stretch, then a reload of a configuration with one
more VIP (ReloadConfig over the API) and what follows it. Prints the answers' p50, p99
and maximum in each phase.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [str(HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]

import grpc  # noqa: E402

from bench.grpc import config  # noqa: E402
from maglev.api.gen.maglev.v1 import maglev_pb2 as pb  # noqa: E402
from maglev.api.gen.maglev.v1 import maglev_pb2_grpc as pb_grpc  # noqa: E402
from test.helpers import Daemon  # noqa: E402

API_DIR = HERE.parent.parent / "shared" / "vpp-api"
EVERY = 0.02


class Poller:
    """GetVersion every 20 ms from its own thread: (sent at, seconds to answer or None for an error)."""

    def __init__(self, address: str) -> None:
        self.stub = pb_grpc.MaglevStub(grpc.insecure_channel(address))
        self.samples: list[tuple[float, float | None]] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.is_set():
            sent = time.monotonic()
            try:
                self.stub.GetVersion(pb.GetVersionRequest(), timeout=10)
                self.samples.append((sent, time.monotonic() - sent))
            except grpc.RpcError:
                self.samples.append((sent, None))
            self.stopped.wait(max(0.0, EVERY - (time.monotonic() - sent)))

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(15)

    def between(self, start: float, end: float) -> list[tuple[float, float | None]]:
        """(seconds after ``start``, the answer's time) of the calls sent in [start, end)."""
        return [(sent - start, took) for sent, took in self.samples if start <= sent < end]


def summary(label: str, calls: list[tuple[float, float | None]]) -> str:
    answered = sorted((took, at) for at, took in calls if took is not None)
    failed = len(calls) - len(answered)
    if not answered:
        return f"{label:<44} no answers ({failed} failed)"
    p99 = answered[min(len(answered) - 1, int(len(answered) * 0.99))][0]
    worst, at = answered[-1]
    return (
        f"{label:<44} p50 {answered[len(answered) // 2][0] * 1000:6.1f} ms, p99 {p99 * 1000:6.1f} ms, "
        f"max {worst * 1000:6.1f} ms (at +{at:.1f} s) over {len(answered):,} calls"
        + (f", {failed} failed" if failed else "")
    )


def slow(label: str, calls: list[tuple[float, float | None]], over: float = 0.1) -> str:
    """When each slow answer was asked (seconds from the phase's start) and how long it took:
    which part of a phase stalls the reactor."""
    late = [f"+{at:.2f} s: {took * 1000:.0f} ms" for at, took in calls if took is not None and took > over]
    return f"{label}: {', '.join(late) if late else 'none'}"


def one_more_vip(text: str, backends: int) -> str:
    return text + (
        "    extra:\n      address: 198.19.255.1\n      protocol: tcp\n      port: 443\n"
        f"      pools: [{{name: primary, backends: {{b0: {{}}, b{backends - 1}: {{}}}}}}]\n"
    )


def main() -> None:
    from bench.probes import backends_up
    from maglev.vppemu.process import start_emulator

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", type=int, default=10_000)
    ap.add_argument("--quiet", type=float, default=5.0, help="seconds of steady state measured before the reload")
    ap.add_argument("--after", type=float, default=10.0, help="seconds measured after the warm-up and the reload")
    args = ap.parse_args()

    with backends_up(args.backends) as name:
        with tempfile.TemporaryDirectory() as tmp:
            api, stats = f"{tmp}/api.sock", f"{tmp}/stats.sock"
            emulator = start_emulator(api, stats, str(API_DIR) if API_DIR.is_dir() else None)
            cfg = Path(tmp) / "maglev.yaml"
            text = config(args.backends, netns=name, probing=True)
            cfg.write_text(text)
            started = time.monotonic()
            daemon = Daemon(["--config", str(cfg), "--metrics-addr", "", "--web-addr", "", "--grpc-addr",
                             "127.0.0.1:0", "--vpp-api-addr", api, "--vpp-stats-addr", stats])  # fmt: skip
            poller = None
            try:
                address = daemon.event("listening", timeout=120, service="grpc")["address"]
                listening = time.monotonic()
                poller = Poller(address)
                daemon.event("lb-warmup-done", timeout=300)
                warm = time.monotonic()
                time.sleep(args.after)  # the full sync the warm-up's end starts
                synced = time.monotonic()
                time.sleep(args.quiet)
                quiet = time.monotonic()
                cfg.write_text(one_more_vip(text, args.backends))
                stub = pb_grpc.MaglevStub(grpc.insecure_channel(address))
                reply = stub.ReloadConfig(pb.ReloadConfigRequest(), timeout=60)
                reloaded = time.monotonic()
                if not reply.ok:
                    raise RuntimeError(f"the reload failed: {reply}")
                applied = daemon.event("config-reload", timeout=30)["apply_seconds"]
                time.sleep(args.after)
                end = time.monotonic()
                poller.stop()
                print(f"{args.backends:,} TCP backends up, checked at 1 s{' (netns)' if name else ''}, "
                      f"{-(-args.backends // 100)} VIPs; the gRPC port listened {listening - started:.1f} s "
                      f"after the start, the warm-up ended {warm - listening:.1f} s after that")  # fmt: skip
                print(summary("start-up, to the warm-up's end", poller.between(listening, warm)))
                print(summary(f"the full sync after it ({args.after:.0f} s)", poller.between(warm, synced)))
                print(summary(f"quiet ({args.quiet:.0f} s)", poller.between(synced, quiet)))
                print(summary(f"ReloadConfig took {(reloaded - quiet) * 1000:.0f} ms; during it",
                              poller.between(quiet, reloaded)))  # fmt: skip
                print(f"the reactor turn that applied it (the daemon's apply_seconds): {applied * 1000:.0f} ms")
                print(summary(f"after the reload ({args.after:.0f} s)", poller.between(reloaded, end)))
                print(slow("answers over 100 ms in the start-up", poller.between(listening, warm)))
                print(slow("answers over 100 ms from the reload on", poller.between(quiet, end)))
            finally:
                if poller is not None:
                    poller.stop()
                daemon.stop(30)
                daemon.kill()
                emulator.terminate()
                emulator.wait(10)


if __name__ == "__main__":
    main()
