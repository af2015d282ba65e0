"""maglevt with 200 VIPs at 100 ms: probes/s achieved against scheduled, CPU.

    python bench/maglevt.py                    # 200 VIPs, 100 ms, 100 probes each

The VIPs are loopback HTTP servers in a child process (bench/probes.py's
backends); maglevt runs in -json mode as its own process.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.probes import PORT, address, serve_backends


def main() -> None:
    vips, count, interval = 200, 100, 0.1
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    servers = ctx.Process(target=serve_backends, args=(vips, ready), daemon=True)
    servers.start()
    ready.wait(60)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "maglev.yaml"
        lines = [
            "maglev:",
            "  vpp: {lb: {ipv4-src-address: 192.0.2.254}}",
            "  healthchecks: {http: {type: http, port: 80}}",
            "  backends: {b: {address: 192.0.2.10, healthcheck: http}}",
            "  frontends:",
        ]
        for i in range(vips):
            lines.append(
                f"    vip{i}: {{address: {address(i)}, port: {PORT}, pools: [{{name: p, backends: {{b: {{}}}}}}]}}"
            )
        cfg.write_text("\n".join(lines) + "\n")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        args = ["-config", str(cfg), "-json", "-count", str(count), "-interval", "100ms"]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        out = subprocess.run([sys.executable, "-m", "maglev.maglevt", *args], capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    servers.terminate()
    result = json.loads(out.stdout)
    probes = sum(v["total"] for v in result["vips"])
    failed = sum(v["failed"] for v in result["vips"])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    ideal = count * interval
    print(f"{vips} VIPs x {count} probes at {interval * 1000:.0f} ms: {wall:.1f} s wall (ideal {ideal:.1f} s)")
    print(f"probes/s {probes / wall:.0f} (scheduled {vips / interval:.0f}), failed {failed}")
    print(f"maglevt CPU {cpu:.1f} s = {cpu / wall:.2f} of a core, {cpu / probes * 1e6:.0f} us per probe")
    p99 = sorted(v["p99_ms"] for v in result["vips"])
    print(f"per-VIP p99 latency: median {p99[len(p99) // 2]} ms, worst {p99[-1]} ms")


if __name__ == "__main__":
    main()
