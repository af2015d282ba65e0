"""``maglev-vppemu``: run the VPP emulator in the foreground until SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

from twisted.logger import globalLogBeginner

from ..log import observer_for, parse_level, set_level
from .server import Emulator


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="maglev-vppemu",
        description="VPP binary API and stats segment emulator with the lb plugin's behaviour",
    )
    p.add_argument("--api-socket", default="/run/vpp/api.sock", help="binary API socket (default %(default)s)")
    p.add_argument("--stats-socket", default="/run/vpp/stats.sock", help="stats socket (default %(default)s)")
    p.add_argument("--api-dir", help="VPP API JSON files (default /usr/share/vpp/api, then ../shared/vpp-api)")
    p.add_argument("--flavour", choices=["master", "v26.06"], default="master", help="VPP to emulate")
    p.add_argument("--gc-interval", type=float, default=60.0, help="lb garbage collection period, seconds")
    p.add_argument("--workers", type=int, default=2, help="worker threads to emulate (counters per thread)")
    p.add_argument("--log-level", default="info", help="debug logs every request")
    return p


def main(argv: list[str] | None = None) -> None:
    p = parser()
    args = p.parse_args(argv)
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
        emu = Emulator(args.api_socket, args.stats_socket, args.api_dir, args.flavour, args.gc_interval, args.workers)
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
    )
    emu.serve()
    emu.stats.close()
    emu.log.info("vppemu stopped", event="vppemu-stopped")


if __name__ == "__main__":
    main()
