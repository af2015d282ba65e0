"""VPP emulator throughput: lb_as_set_weight round trips from 1 and from 4 clients.

    python bench/vppemu.py                 # 20,000 round trips per run
    python bench/vppemu.py --requests 5000

The emulator runs as its own process (maglev-vppemu); clients are separate
processes using the real vpp_papi client. Prints requests/s (all clients
together) and the emulator's own CPU time (user+sys from /proc) per request.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from maglev.vppemu.process import start_emulator

ROOT = Path(__file__).resolve().parent.parent
API_DIR = ROOT.parent / "shared" / "vpp-api"
VIP = {"pfx": "192.0.2.1/32", "protocol": 6, "port": 80}


def cpu_of(pid: int, which: str = "both") -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    user, system = int(fields[11]), int(fields[12])
    ticks = {"both": user + system, "user": user, "sys": system}[which]
    return ticks / os.sysconf("SC_CLK_TCK")


def client(api: str, n: int, index: int, start: Any, ready: Any, results: Any) -> None:
    from vpp_papi import VPPApiClient

    c = VPPApiClient(apidir=str(API_DIR), server_address=api, read_timeout=10)
    c.connect(f"bench{index}")
    address = f"198.51.100.{index + 1}"
    ready.release()
    start.wait()
    t0 = time.perf_counter()
    for i in range(n):
        r = c.api.lb_as_set_weight(**VIP, as_address=address, weight=(i % 100) + 1)
        if r.retval != 0:
            raise RuntimeError(f"retval {r.retval}")
    results.put(time.perf_counter() - t0)
    c.disconnect()


def run(api: str, pid: int, clients: int, total: int) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    start, ready, results = ctx.Event(), ctx.Semaphore(0), ctx.Queue()
    per = total // clients
    procs = [ctx.Process(target=client, args=(api, per, i, start, ready, results)) for i in range(clients)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire(timeout=120)  # every client connected before the clock starts
    cpu0, user0, t0 = cpu_of(pid), cpu_of(pid, "user"), time.perf_counter()
    start.set()
    for _ in procs:
        results.get(timeout=600)
    wall = time.perf_counter() - t0
    cpu = cpu_of(pid) - cpu0
    user = cpu_of(pid, "user") - user0
    for p in procs:
        p.join(30)
    done = per * clients
    return {
        "clients": clients,
        "requests": done,
        "requests_per_s": round(done / wall),
        "emulator_cpu_us_per_request": round(cpu / done * 1e6, 1),
        "emulator_cpu_share": round(cpu / wall, 2),
        "emulator_user_us_per_request": round(user / done * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the median is printed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        api, stats = f"{tmp}/api.sock", f"{tmp}/stats.sock"
        emu = start_emulator(api, stats, str(API_DIR))
        try:
            from vpp_papi import VPPApiClient

            setup = VPPApiClient(apidir=str(API_DIR), server_address=api)
            setup.connect("setup")
            setup.api.lb_add_del_vip_v2(**VIP, encap=0)
            for i in range(4):
                setup.api.lb_add_del_as_v2(**VIP, as_address=f"198.51.100.{i + 1}")
            setup.disconnect()
            print(f"# {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, median of {args.repeat} runs")
            print(
                f"{'clients':>7} {'requests':>9} {'req/s':>8} {'emu CPU us/req':>15} "
                f"{'of which user':>14} {'emu CPU':>8}"
            )
            for clients in (1, 4):
                runs = [run(api, emu.pid, clients, args.requests) for _ in range(args.repeat)]
                med = {
                    k: statistics.median(r[k] for r in runs)
                    for k in (
                        "requests_per_s",
                        "emulator_cpu_us_per_request",
                        "emulator_user_us_per_request",
                        "emulator_cpu_share",
                    )
                }
                print(
                    f"{clients:>7} {runs[0]['requests']:>9} {med['requests_per_s']:>8.0f} "
                    f"{med['emulator_cpu_us_per_request']:>15} {med['emulator_user_us_per_request']:>14} "
                    f"{med['emulator_cpu_share']:>8}",
                    flush=True,
                )
        finally:
            emu.send_signal(signal.SIGTERM)
            emu.wait(10)


if __name__ == "__main__":
    main()
