"""Run maglevd on the bundled demo configuration, in the foreground.

Demo backends on 127.0.1.x:8080 (flip them through the control port), the VPP
emulator on unix sockets under the run directory (its VIPs follow the demo
backends; with --forward it relays connections to the TCP VIP 127.0.2.1:8080 to
the backend VPP would pick), metrics on 127.0.0.1:9091, the manhole on a unix
socket.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from maglev.daemon import main as maglevd
from maglev.demo.backends import DemoBackends
from maglev.vppemu.process import start_emulator

if TYPE_CHECKING:
    from maglev.options import Settings
    from maglev.reactor import Reactor

ADMIN = ("demo", "demo")


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m maglev.demo", description=__doc__)
    parser.add_argument("--run-dir", default=os.environ.get("MAGLEV_DEMO_DIR", ".demo"))
    parser.add_argument("--metrics-addr", default="127.0.0.1:9091")
    parser.add_argument("--control-port", type=int, default=9099, help="demo backend control port on 127.0.0.1")
    parser.add_argument("--grpc-addr", default="127.0.0.1:9090")
    parser.add_argument("--web-addr", default="127.0.0.1:8080")
    parser.add_argument("--log-level", default="info")
    parser.add_argument(
        "--access-log", action="store_true", help="log the demo backends' HTTP requests (the health checks)"
    )
    args = parser.parse_args(argv)
    run_dir = Path(args.run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    config = run_dir / "maglev.yaml"
    config.write_text(resources.files("maglev.demo").joinpath("maglev.yaml").read_text())
    manhole = run_dir / "manhole.sock"
    api, stats = run_dir / "vpp-api.sock", run_dir / "vpp-stats.sock"
    # The demo's admin login, unless the environment brings its own.
    os.environ.setdefault("MAGLEV_FRONTEND_USER", ADMIN[0])
    os.environ.setdefault("MAGLEV_FRONTEND_PASSWORD", ADMIN[1])
    # Print the demo's own password, never one the environment brought.
    own = (os.environ["MAGLEV_FRONTEND_USER"], os.environ["MAGLEV_FRONTEND_PASSWORD"]) == ADMIN
    login = "user demo, password demo" if own else "your MAGLEV_FRONTEND_USER login"
    emulator = start_emulator(str(api), str(stats), None, "--gc-interval", "10", "--forward")
    maglevt = Path(sys.executable).with_name("maglevt")
    maglevt_cmd = f"{maglevt if maglevt.exists() else 'maglevt'} -config {config}"
    print(
        f"vpp-maglev demo: config {config}\n"
        f"  web UI:   http://{args.web_addr}/view/   (admin: http://{args.web_addr}/admin/, "
        f"{login})\n"
        f"  metrics:  curl http://{args.metrics_addr}/metrics\n"
        f"  console:  socat -,raw,echo=0 UNIX-CONNECT:{manhole}\n"
        f"  backends: curl http://127.0.0.1:{args.control_port}/   "
        f"(flip: curl -X POST http://127.0.0.1:{args.control_port}/web0/down, .../web0/up, .../web0/stop)\n"
        f"  clients:  {maglevt_cmd}\n"
        f"            (which backend answers the VIP 127.0.2.1:8080, live; flip web0 down and watch its\n"
        f"            share move to web1 and web2; or: curl -si http://127.0.2.1:8080/ | grep X-Backend)\n"
        f"  VPP:      the emulator on {api}, relaying the VIP's connections as VPP would pick;\n"
        f"            curl -s http://{args.metrics_addr}/metrics | grep maglev_frontend_pool_backend_weight\n"
        f"  reload:   edit {config}, then kill -HUP {os.getpid()}\n"
        "  stop:     Ctrl-C\n",
        flush=True,
    )

    def start_backends(reactor: Reactor, settings: Settings) -> None:
        DemoBackends(reactor, settings.config, access_log=args.access_log).start(control_port=args.control_port)

    try:
        maglevd(
            [
                "--config", str(config),
                "--metrics-addr", args.metrics_addr,
                "--manhole-addr", str(manhole),
                "--vpp-api-addr", str(api),
                "--vpp-stats-addr", str(stats),
                "--grpc-addr", args.grpc_addr,
                "--web-addr", args.web_addr,
                "--log-level", args.log_level,
                "--state-dir", str(run_dir),
            ],
            before_start=start_backends,
        )  # fmt: skip
    finally:
        emulator.terminate()
        emulator.wait(10)


if __name__ == "__main__":
    run()
