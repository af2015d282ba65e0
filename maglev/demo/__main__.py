"""Run maglevd on the bundled demo configuration, in the foreground.

Demo backends on 127.0.1.x:8080 (flip them through the control port), metrics
on 127.0.0.1:9091, the manhole on a unix socket under the run directory, VPP
integration off until the emulator joins the demo.
"""

from __future__ import annotations

import argparse
import os
from importlib import resources
from pathlib import Path
from typing import Any

from maglev.daemon import main as maglevd
from maglev.demo.backends import DemoBackends


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m maglev.demo", description=__doc__)
    parser.add_argument("--run-dir", default=os.environ.get("MAGLEV_DEMO_DIR", ".demo"))
    parser.add_argument("--metrics-addr", default="127.0.0.1:9091")
    parser.add_argument("--control-port", type=int, default=9099, help="demo backend control port on 127.0.0.1")
    args = parser.parse_args(argv)
    run_dir = Path(args.run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    config = run_dir / "maglev.yaml"
    config.write_text(resources.files("maglev.demo").joinpath("maglev.yaml").read_text())
    manhole = run_dir / "manhole.sock"
    print(
        f"vpp-maglev demo: config {config}\n"
        f"  metrics:  curl http://{args.metrics_addr}/metrics\n"
        f"  console:  socat -,raw,echo=0 UNIX-CONNECT:{manhole}\n"
        f"  backends: curl http://127.0.0.1:{args.control_port}/   "
        f"(flip: curl -X POST http://127.0.0.1:{args.control_port}/web0/down, .../web0/up, .../web0/stop)\n"
        f"  reload:   edit {config}, then kill -HUP {os.getpid()}\n"
        "  stop:     Ctrl-C\n",
        flush=True,
    )

    def start_backends(reactor: Any, options: Any) -> None:
        DemoBackends(reactor, options["config_obj"]).start(control_port=args.control_port)

    maglevd(
        [
            "--config", str(config),
            "--metrics-addr", args.metrics_addr,
            "--manhole-addr", str(manhole),
            "--vpp-api-addr", "",
            "--grpc-addr", "127.0.0.1:9090",
        ],
        before_start=start_backends,
    )  # fmt: skip


if __name__ == "__main__":
    run()
