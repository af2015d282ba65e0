"""``maglev-vppemu``: run the VPP emulator in the foreground until SIGTERM."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Mapping
from types import FrameType

from twisted.logger import globalLogBeginner

from ..goflags import add_both_forms, env_defaults, go_style
from ..log import observer_for, parse_level, set_level
from ..version import version_line
from .server import Emulator

PARAMETERS = ("api-socket", "stats-socket", "api-dir", "flavour", "gc-interval", "workers", "log-level")
FLAGS = ("forward", "version")
ENV_PREFIX = "MAGLEV_VPPEMU"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="maglev-vppemu",
        description="VPP binary API and stats segment emulator with the lb plugin's behaviour. "
        "Every option also reads its MAGLEV_VPPEMU_* variable (--gc-interval: MAGLEV_VPPEMU_GC_INTERVAL); "
        "the option wins.",
    )

    option = add_both_forms(p)

    option("api-socket", default="/run/vpp/api.sock", help="binary API socket (default %(default)s)")
    option("stats-socket", default="/run/vpp/stats.sock", help="stats socket (default %(default)s)")
    option("api-dir", help="VPP API JSON files (default /usr/share/vpp/api, else the packaged ones)")
    option("flavour", choices=["master", "v26.06"], default="master", help="VPP to emulate")
    option("gc-interval", type=float, default=60.0, help="lb garbage collection period, seconds")
    option("workers", type=int, default=2, help="worker threads to emulate (counters per thread)")
    option("log-level", default="info", help="debug logs every request")
    option(
        "forward",
        action="store_true",
        help="a dry-run and demo aid, not a dataplane: accept TCP on each TCP VIP's address and port "
        "(addresses this machine has, such as loopback ones) and relay to the AS VPP would pick",
    )
    option("version", action="store_true", help="print the version and exit")
    return p


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> None:
    p = parser()
    try:
        p.set_defaults(**env_defaults(os.environ if environ is None else environ, ENV_PREFIX, PARAMETERS, FLAGS))
    except ValueError as e:
        p.error(str(e))
    args = p.parse_args(go_style(sys.argv[1:] if argv is None else argv, PARAMETERS, FLAGS))
    if args.version:
        print(version_line("maglev-vppemu"))
        return
    if args.flavour not in ("master", "v26.06"):  # a variable's value is not checked by argparse
        p.error(f"--flavour: expected master or v26.06, got {args.flavour!r}")
    if args.gc_interval <= 0:
        p.error("--gc-interval must be positive")
    if not 0 <= args.workers <= 64:
        p.error("--workers must be 0..64")
    try:
        level = parse_level(args.log_level)
    except ValueError as e:
        p.error(str(e))
    set_level(level)
    globalLogBeginner.beginLoggingTo([observer_for(sys.stdout, level)], redirectStandardIO=False)
    try:
        emu = Emulator(
            args.api_socket,
            args.stats_socket,
            args.api_dir,
            args.flavour,
            args.gc_interval,
            args.workers,
            forward=args.forward,
        )
        emu.listen()
    except (OSError, ValueError) as e:
        print(f"maglev-vppemu: {e}", file=sys.stderr)
        raise SystemExit(1) from None

    def stop(signum: int, frame: FrameType | None) -> None:
        emu.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    emu.log.info(
        "vppemu {flavour} serving {api} and {stats}",
        event="vppemu-ready",
        flavour=args.flavour,
        api=args.api_socket,
        stats=args.stats_socket,
        forward=args.forward,
    )
    emu.serve()
    emu.stats.close()
    emu.log.info("vppemu stopped", event="vppemu-stopped")


if __name__ == "__main__":
    main()
