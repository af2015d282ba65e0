"""``maglevd``: the maglev service in the foreground, JSON log lines on stdout.

The same Options and makeService as ``twistd -n maglev``; this runner only
adds the logging setup and clean exit codes (64 usage, 1 start failure).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

from twisted.application.service import Application, IService
from twisted.internet.interfaces import IReactorCore
from twisted.logger import globalLogBeginner
from twisted.python import usage

from .listener import ListenError
from .log import observer_for
from .options import MaglevOptions, Settings

if TYPE_CHECKING:
    from .reactor import Reactor
    from .web.frontend import FrontendOptions

EX_USAGE = 64


def main(argv: list[str] | None = None, before_start: Callable[[Reactor, Settings], None] | None = None) -> None:
    """Run maglevd; ``before_start(reactor, options)`` lets the demo add its own pieces."""
    options = MaglevOptions()
    parse_or_exit("maglevd", options, argv)

    from twisted.internet import reactor

    from .app import build_service

    if before_start is not None:
        before_start(reactor, options.settings)
    run_foreground("maglevd", build_service(options.settings, reactor), reactor)


def parse_or_exit(program: str, options: MaglevOptions | FrontendOptions, argv: list[str] | None) -> None:
    """Parse the command line (a usage error exits 64 with a hint), then log JSON lines on
    stdout at the level the options chose."""
    try:
        options.parseOptions(sys.argv[1:] if argv is None else argv)
    except usage.UsageError as e:
        print(f"{program}: {e}", file=sys.stderr)
        print(f"Try '{program} --help' for the options.", file=sys.stderr)
        raise SystemExit(EX_USAGE) from None
    globalLogBeginner.beginLoggingTo([observer_for(sys.stdout, options.settings.log_level)], redirectStandardIO=False)


def run_foreground(program: str, service: IService, reactor: IReactorCore) -> NoReturn:
    """Start ``service`` (its ports bound first: exit 1 naming the address when one cannot
    be), run the reactor until a signal stops it, exit 0."""
    application = Application(program)
    service.setServiceParent(application)
    top = IService(application)
    try:
        top.privilegedStartService()
        top.startService()
    except ListenError as e:
        print(f"{program}: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    reactor.addSystemEventTrigger("before", "shutdown", top.stopService)
    reactor.run()
    raise SystemExit(0)
