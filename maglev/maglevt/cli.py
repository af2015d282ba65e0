"""``maglevt``: probe every VIP of maglev.yaml from the client side."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IReactorCore, IReactorFromThreads

from .. import __version__
from ..config import ConfigError, load_config_file
from ..config.durations import DurationError, parse_duration
from ..goflags import add_both_forms, env_defaults, go_style
from ..version import version_line
from .stats import Board

if TYPE_CHECKING:
    from .probe import VipProber


PARAMETERS = ("config", "filter", "interval", "timeout", "host", "uri", "header", "insecure", "count")
FLAGS = ("keepalive", "once", "json", "version")
ENV_PREFIX = "MAGLEV_MAGLEVT"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="maglevt",
        description="Out-of-band VIP prober: which backend answers, how fast. Every flag also reads its "
        "MAGLEV_MAGLEVT_* variable (-interval: MAGLEV_MAGLEVT_INTERVAL; -config: MAGLEV_CONFIG, comma-separated); "
        "the flag wins.",
    )

    flag = add_both_forms(p, primary="-")  # Go's form first, as the original's documentation

    flag("config", action="append", default=[], help="maglev.yaml (repeatable) [default /etc/vpp-maglev/maglev.yaml]")
    flag("filter", default=None, help="only frontends whose name matches this regular expression")
    flag("interval", default="100ms", help="time between probes of one VIP, ±10%% (default 100ms)")
    flag("timeout", default="1s", help="probe deadline (default 1s)")
    flag("host", default=None, help="HTTP Host header and TLS SNI (default: the VIP address)")
    flag("uri", default="/.well-known/ipng/healthz", help="HTTP path (default %(default)s)")
    flag("header", default="X-Backend", help="response header to tally (default %(default)s); '' for none")
    flag("insecure", default="true", help="skip TLS verification, true or false (default true)")
    flag("keepalive", action="store_true", help="reuse connections (default: a new flow per probe)")
    flag("once", action="store_true", help="probe each VIP -count times, print a table, exit")
    flag("json", action="store_true", help="like -once, but print JSON")
    flag("count", type=int, default=10, help="probes per VIP with -once/-json (default 10)")
    flag("version", action="store_true", help="print the version and exit")
    return p


def parse(argv: list[str] | None, environ: Mapping[str, str]) -> argparse.Namespace:
    """The command line over the MAGLEV_* variables (Go-style flags as the original wrote them)."""
    p = parser()
    try:
        defaults = env_defaults(environ, ENV_PREFIX, [n for n in PARAMETERS if n != "config"], FLAGS)
    except ValueError as e:
        p.error(str(e))
    p.set_defaults(**defaults)
    args = p.parse_args(go_style(sys.argv[1:] if argv is None else argv, PARAMETERS, FLAGS))
    if not args.config and environ.get("MAGLEV_CONFIG"):
        args.config = [c.strip() for c in environ["MAGLEV_CONFIG"].split(",") if c.strip()]
    return args


def fqdn() -> str:
    try:
        return socket.getfqdn()
    except OSError:
        return socket.gethostname()


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> None:
    args = parse(argv, os.environ if environ is None else environ)
    if args.version:
        print(version_line("maglevt"))
        return
    try:
        interval, timeout = parse_duration(args.interval), parse_duration(args.timeout)
    except DurationError as e:
        print(f"maglevt: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    if interval <= 0 or timeout <= 0:
        print("maglevt: -interval and -timeout must be positive", file=sys.stderr)
        raise SystemExit(2)
    if args.count < 1:
        print("maglevt: -count must be at least 1", file=sys.stderr)
        raise SystemExit(2)
    if args.insecure.lower() not in ("true", "false", "1", "0"):
        print(f"maglevt: -insecure: expected true or false, got {args.insecure!r}", file=sys.stderr)
        raise SystemExit(2)
    try:
        pattern = re.compile(args.filter) if args.filter else None
    except re.error as e:
        print(f"maglevt: -filter: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    configs = []
    for path in args.config or ["/etc/vpp-maglev/maglev.yaml"]:
        try:
            configs.append(load_config_file(path))
        except ConfigError as e:
            print(f"maglevt: {path}: {e}", file=sys.stderr)
            raise SystemExit(2) from None

    from twisted.internet import asyncioreactor

    asyncioreactor.install()
    from twisted.internet import reactor

    from .probe import VipProber, targets

    found = targets(configs, pattern)
    if not found:
        print("maglevt: no TCP frontends to probe (check -filter)", file=sys.stderr)
        raise SystemExit(2)
    board = Board()
    batch = args.once or args.json
    prober = VipProber(
        reactor, board, found, interval, timeout, args.host, args.uri, args.header or None,
        args.insecure.lower() in ("true", "1"), args.keepalive, time.time, limit=args.count if batch else None,
    )  # fmt: skip
    if batch:
        _batch(reactor, prober, board, args.json)
    else:
        _interactive(reactor, prober, board, args.header or None)


def _batch(reactor: IReactorCore, prober: VipProber, board: Board, as_json: bool) -> None:
    prober.finished.addBoth(lambda _: reactor.stop())
    reactor.callWhenRunning(prober.start)
    reactor.run()
    prober.stop()
    now = time.time()
    summaries = [s.summary(now) for s in board.vips.values()]
    if as_json:
        print(json.dumps({"vips": summaries, "errors": board.error_totals, "version": __version__}, indent=1))
    else:
        for s in summaries:
            tally: Any = s["backends"]
            backends = " ".join(f"{k}={v['count']}" for k, v in tally.items())
            print(
                f"{s['vip']:<40} N={s['total']} FAIL={s['failed']} p50={s['p50_ms']}ms p99={s['p99_ms']}ms {backends}"
            )
    raise SystemExit(1 if any(s["failed"] for s in summaries) else 0)


def _interactive(reactor: IReactorCore, prober: VipProber, board: Board, header: str | None) -> None:
    from twisted.internet.task import LoopingCall

    from .ui import Screen, render

    screen = Screen()
    title = fqdn()
    quitting: list[bool] = []

    def quit_() -> None:
        if not quitting:
            quitting.append(True)
            reactor.stop()

    def tick() -> None:
        for k in screen.keys():
            if k in (ord("q"), ord("Q"), 3):
                quit_()
                return
        w, h = screen.size()
        screen.draw(render(board, w, h, time.time(), title, header))

    threads = IReactorFromThreads(reactor)
    signal.signal(signal.SIGINT, lambda *a: threads.callFromThread(quit_))
    loop = LoopingCall(tick)
    reactor.callWhenRunning(prober.start)
    reactor.callWhenRunning(lambda: loop.start(0.25))
    try:
        reactor.run(installSignalHandlers=False)  # type: ignore[call-arg]  # ReactorBase takes it; the interface does not say
    finally:
        prober.stop()
        screen.close()
