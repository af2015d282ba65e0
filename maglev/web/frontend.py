"""maglevd-frontend: the web UI alone, watching one or more maglevds over gRPC.

``maglevd-frontend --server a:9090,b:9090`` in the foreground (JSON log lines on
stdout, as maglevd), or ``twistd -n maglev-frontend ...``. Every flag has an
environment variable; the flag wins. SIGHUP is ignored: there is nothing to reload.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from twisted.application.service import IService, MultiService, Service
from twisted.logger import LogLevel
from twisted.python import usage

from ..addresses import AddressError, TcpAddress, parse_server, parse_tcp
from ..api.client import ClientAuth, ClientTls, read_token_file
from ..api.tls import TlsError
from ..goflags import go_style
from ..log import Logger, parse_level, set_level
from ..options import admin_credentials, allowed_hosts, long_options
from ..version import version_line

if TYPE_CHECKING:
    from ..reactor import Reactor

ENVIRONMENT: dict[str, tuple[str, str]] = {
    "server": ("MAGLEV_SERVERS", ""),
    "listen": ("MAGLEV_LISTEN", "127.0.0.1:8081"),
    "log-level": ("MAGLEV_LOG_LEVEL", "info"),
    "web-allowed-hosts": ("MAGLEV_WEB_ALLOWED_HOSTS", ""),
    "tls-ca": ("MAGLEV_TLS_CA", ""),
    "tls-cert": ("MAGLEV_TLS_CERT", ""),
    "tls-key": ("MAGLEV_TLS_KEY", ""),
    "tls-server-name": ("MAGLEV_TLS_SERVER_NAME", ""),
    "token-file": ("MAGLEV_TOKEN_FILE", ""),
}


class FrontendOptions(usage.Options):
    synopsis = "--server HOST:PORT[,HOST:PORT...] [options]"
    longdesc = (
        "maglevd-frontend serves the maglev web UI for one or more maglevds, read over gRPC. "
        "Every option can also be set with its environment variable; the option wins."
    )
    optParameters = [
        ["server", "s", None, "maglevd gRPC addresses, comma-separated [MAGLEV_SERVERS, or MAGLEV_SERVER]"],
        ["listen", "l", None, "web listen address [MAGLEV_LISTEN, default 127.0.0.1:8081]"],
        ["log-level", None, None, "debug, info, warn or error [MAGLEV_LOG_LEVEL, default info]"],
        [
            "web-allowed-hosts",
            None,
            None,
            "host names the web UI answers to besides its own addresses, comma-separated [MAGLEV_WEB_ALLOWED_HOSTS]",
        ],
        ["tls-ca", None, None, "talk TLS to the maglevds, trusting this CA (PEM) [MAGLEV_TLS_CA]"],
        ["tls-cert", None, None, "client certificate for mTLS (PEM) [MAGLEV_TLS_CERT]"],
        ["tls-key", None, None, "the client certificate's key (PEM) [MAGLEV_TLS_KEY]"],
        ["tls-server-name", None, None, "the name to expect in the maglevds' certificates [MAGLEV_TLS_SERVER_NAME]"],
        [
            "token-file",
            None,
            None,
            "file holding the API token sent to every maglevd, or HOST:PORT=FILE,... one per maglevd "
            "[MAGLEV_TOKEN_FILE]",
        ],
    ]

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        super().__init__()
        self.environ = dict(os.environ if environ is None else environ)

    def parseOptions(self, options: Sequence[str] | None = None) -> None:
        """The original's single-dash flags too (``-server a:9090 -listen :8080``)."""
        super().parseOptions(go_style(sys.argv[1:] if options is None else options, *long_options(self)))

    def opt_version(self) -> None:
        """print the version and git commit, then exit"""
        print(version_line("maglevd-frontend"))
        raise SystemExit(0)

    def postOptions(self) -> None:
        for name, (env, default) in ENVIRONMENT.items():
            if self[name] is None:
                self[name] = self.environ.get(env, default)
        if not self["server"]:
            self["server"] = self.environ.get("MAGLEV_SERVER", "")
        names = [s.strip() for s in self["server"].split(",") if s.strip()]
        if not names:
            raise usage.UsageError("--server: give at least one maglevd gRPC address (HOST:PORT)")
        try:
            servers = tuple(parse_server(s) for s in names)
        except AddressError as e:
            raise usage.UsageError(f"--server: {e}") from None
        if len(set(servers)) != len(servers):
            raise usage.UsageError(f"--server: {self['server']!r} names a server twice")
        try:
            listen = parse_tcp(self["listen"])
        except AddressError as e:
            raise usage.UsageError(f"--listen: {e}") from None
        try:
            log_level = parse_level(self["log-level"])
        except ValueError as e:
            raise usage.UsageError(f"--log-level: {e}") from None
        tls = ClientTls(self["tls-ca"], self["tls-cert"], self["tls-key"], self["tls-server-name"])
        try:
            tls.check()
        except TlsError as e:
            raise usage.UsageError(str(e)) from None
        tokens = server_tokens(self["token-file"], servers)
        auth = tuple((s, ClientAuth(tls, tokens.get(s))) for s in servers)
        self.settings = FrontendSettings(
            servers,
            listen,
            log_level,
            admin_credentials(self.environ),
            allowed_hosts("web-allowed-hosts", self["web-allowed-hosts"]),
            auth,
        )
        from ..reactor import ensure_asyncio_reactor

        ensure_asyncio_reactor()


@dataclass(frozen=True)
class FrontendSettings:
    """maglevd-frontend's parsed and checked command line."""

    servers: tuple[str, ...]
    listen: TcpAddress
    log_level: LogLevel
    admin_credentials: tuple[str, str] | None
    web_allowed_hosts: tuple[str, ...] = ()
    auth: tuple[tuple[str, ClientAuth], ...] = ()  # per server: TLS and token


def server_tokens(text: str, servers: tuple[str, ...]) -> dict[str, str]:
    """--token-file: ``FILE`` for every server, or ``HOST:PORT=FILE,...`` one each; server -> token."""
    text = text.strip()
    if not text:
        return {}
    try:
        if "=" not in text:
            token = read_token_file(text)
            return {s: token for s in servers}
        out: dict[str, str] = {}
        for part in text.split(","):
            server, _, path = part.strip().rpartition("=")
            try:
                server = parse_server(server)
            except AddressError as e:
                raise usage.UsageError(f"--token-file: {part.strip()!r}: {e}") from None
            if server not in servers:
                raise usage.UsageError(f"--token-file: {server} is not one of --server {','.join(servers)}")
            out[server] = read_token_file(path.strip())
        return out
    except ValueError as e:
        raise usage.UsageError(str(e)) from None


Options = FrontendOptions


class IgnoreSighup(Service):
    """There is no configuration to reload; a stray HUP must not stop the dashboard."""

    name = "sighup"

    def startService(self) -> None:
        super().startService()
        signal.signal(signal.SIGHUP, signal.SIG_IGN)


def makeService(options: FrontendOptions, reactor: Reactor | None = None) -> IService:
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    from .hosts import HostCheck
    from .service import WebService, add_remote_sources, make_web

    settings = options.settings
    set_level(settings.log_level)
    Logger(namespace="maglev").info(
        "starting maglevd-frontend for {servers}",
        event="starting",
        servers=list(settings.servers),
        listen=str(settings.listen),
        admin=settings.admin_credentials is not None,
    )
    root = MultiService()
    web = make_web(reactor, settings.admin_credentials, HostCheck(settings.listen, settings.web_allowed_hosts))
    add_remote_sources(web, list(settings.servers), dict(settings.auth))
    WebService(web, settings.listen, reactor).setServiceParent(root)
    IgnoreSighup().setServiceParent(root)
    return root


def main(argv: list[str] | None = None) -> None:
    from ..daemon import parse_or_exit, run_foreground

    options = FrontendOptions()
    parse_or_exit("maglevd-frontend", options, argv)
    from twisted.internet import reactor

    run_foreground("maglevd-frontend", makeService(options, reactor), reactor)


if __name__ == "__main__":
    main()
