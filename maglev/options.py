"""maglevd's command line: the same Options for ``maglevd``, ``twistd -n maglev``
and ``twist maglev``. Every flag has a MAGLEV_* environment variable; the flag wins.

All checking happens in postOptions so a bad flag is a clean usage error
(a UsageError raised in makeService prints a traceback instead).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from twisted.logger import LogLevel
from twisted.python import usage

from .access import load_policy
from .addresses import AddressError, TcpAddress, UnixAddress, parse_listen, parse_tcp
from .api.tls import TlsError, TlsFiles, load_server_material
from .config import Config, ConfigError, ErrorKind, load_config_file
from .dataplane.tables import fidelity_warnings
from .goflags import go_style
from .log import parse_level
from .version import version_line
from .vppapi import find_api_dir

DEFAULT_CONFIG = "/etc/vpp-maglev/maglev.yaml"
DEFAULT_STATE_DIR = "/var/lib/vpp-maglev"

# option name -> (environment variable, default)
ENVIRONMENT: dict[str, tuple[str, str]] = {
    "config": ("MAGLEV_CONFIG", DEFAULT_CONFIG),
    "grpc-addr": ("MAGLEV_GRPC_ADDR", ":9090"),
    "metrics-addr": ("MAGLEV_METRICS_ADDR", ":9091"),
    "web-addr": ("MAGLEV_WEB_ADDR", "127.0.0.1:8080"),
    "vpp-api-addr": ("MAGLEV_VPP_API_ADDR", "/run/vpp/api.sock"),
    "vpp-stats-addr": ("MAGLEV_VPP_STATS_ADDR", "/run/vpp/stats.sock"),
    "vpp-api-dir": ("MAGLEV_VPP_API_DIR", ""),
    "log-level": ("MAGLEV_LOG_LEVEL", "info"),
    "manhole-addr": ("MAGLEV_MANHOLE_ADDR", ""),
    "manhole-authorized-keys": ("MAGLEV_MANHOLE_AUTHORIZED_KEYS", ""),
    "manhole-host-key": ("MAGLEV_MANHOLE_HOST_KEY", "/var/lib/vpp-maglev/manhole_host_key"),
    "reflection": ("MAGLEV_REFLECTION", "true"),
    "grpc-tls-cert": ("MAGLEV_GRPC_TLS_CERT", ""),
    "grpc-tls-key": ("MAGLEV_GRPC_TLS_KEY", ""),
    "grpc-tls-client-ca": ("MAGLEV_GRPC_TLS_CLIENT_CA", ""),
    "grpc-tokens": ("MAGLEV_GRPC_TOKENS", ""),
    "web-allowed-hosts": ("MAGLEV_WEB_ALLOWED_HOSTS", ""),
    "state-dir": ("MAGLEV_STATE_DIR", DEFAULT_STATE_DIR),
}


@dataclass(frozen=True)
class Settings:
    """maglevd's parsed and checked command line (flags, then MAGLEV_*, then defaults)."""

    config_path: str
    config: Config  # the file at start, already checked
    grpc_addr: TcpAddress | None
    metrics_addr: TcpAddress | None
    web_addr: TcpAddress | None
    vpp_api_addr: str  # empty: VPP integration off
    vpp_stats_addr: str
    vpp_api_dir: str | None
    log_level: LogLevel
    manhole_addr: TcpAddress | UnixAddress | None
    manhole_authorized_keys: str
    manhole_host_key: str
    reflection: bool
    grpc_tls: TlsFiles | None  # None: plaintext
    grpc_tokens: str  # the tokens file's path; "" = none (reads open, changes from loopback only)
    web_allowed_hosts: tuple[str, ...]
    state_dir: str  # the operator's overrides are kept here across restarts; "" = not kept
    admin_credentials: tuple[str, str] | None
    effective: tuple[tuple[str, str], ...]  # every flag's effective text, for the starting log line

    def describe(self) -> dict[str, str]:
        return dict(self.effective)


TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}


def admin_credentials(environ: dict[str, str]) -> tuple[str, str] | None:
    """The web admin's user and password (MAGLEV_FRONTEND_USER/_PASSWORD); None leaves /admin/ off."""
    user = environ.get("MAGLEV_FRONTEND_USER", "")
    password = environ.get("MAGLEV_FRONTEND_PASSWORD", "")
    if not user and not password:
        return None
    if not user or not password:
        missing = "MAGLEV_FRONTEND_USER" if not user else "MAGLEV_FRONTEND_PASSWORD"
        raise usage.UsageError(f"{missing} is empty: set both MAGLEV_FRONTEND_USER and MAGLEV_FRONTEND_PASSWORD")
    if ":" in user:
        raise usage.UsageError("MAGLEV_FRONTEND_USER must not contain ':' (HTTP basic auth)")
    return user, password


def parse_bool(name: str, text: str) -> bool:
    s = text.strip().lower()
    if s in TRUE:
        return True
    if s in FALSE:
        return False
    raise usage.UsageError(f"--{name}: expected true or false, got {text!r}")


class MaglevOptions(usage.Options):
    synopsis = "[options] [--check [FILE]]"
    longdesc = (
        "maglevd health-checks backends and programs VPP's lb (Maglev) plugin. "
        "Every option can also be set with its MAGLEV_* environment variable; the option wins."
    )
    optFlags = [
        ["check", None, "validate the configuration (--config or FILE) and exit: 0 valid, 1 structural, 2 semantic"],
        [
            "against-running",
            None,
            "with --check: also preview what the file would change in the running maglevd's VPP tables "
            "(reached at --grpc-addr, without TLS; 3 when it cannot be reached)",
        ],
    ]
    optParameters = [
        ["config", "c", None, "configuration file [MAGLEV_CONFIG, default " + DEFAULT_CONFIG + "]"],
        ["grpc-addr", None, None, "gRPC listen address [MAGLEV_GRPC_ADDR, default :9090]"],
        [
            "metrics-addr",
            None,
            None,
            "Prometheus /metrics listen address, empty disables [MAGLEV_METRICS_ADDR, default :9091]",
        ],
        ["web-addr", None, None, "web UI listen address, empty disables [MAGLEV_WEB_ADDR, default 127.0.0.1:8080]"],
        [
            "vpp-api-addr",
            None,
            None,
            "VPP binary API socket, empty disables VPP [MAGLEV_VPP_API_ADDR, default /run/vpp/api.sock]",
        ],
        ["vpp-stats-addr", None, None, "VPP stats socket [MAGLEV_VPP_STATS_ADDR, default /run/vpp/stats.sock]"],
        [
            "vpp-api-dir",
            None,
            None,
            "VPP API definitions (JSON) [MAGLEV_VPP_API_DIR, default /usr/share/vpp/api, "
            "then a checkout's ../shared/vpp-api]",
        ],
        ["log-level", None, None, "debug, info, warn or error [MAGLEV_LOG_LEVEL, default info]"],
        [
            "manhole-addr",
            None,
            None,
            "admin console: a unix socket path (created 0600) or a loopback HOST:PORT for SSH "
            "[MAGLEV_MANHOLE_ADDR, default off]",
        ],
        [
            "manhole-authorized-keys",
            None,
            None,
            "authorized_keys file for the SSH manhole [MAGLEV_MANHOLE_AUTHORIZED_KEYS]",
        ],
        ["manhole-host-key", None, None, "SSH manhole host key, created if missing [MAGLEV_MANHOLE_HOST_KEY]"],
        ["reflection", None, None, "gRPC server reflection, true or false [MAGLEV_REFLECTION, default true]"],
        ["grpc-tls-cert", None, None, "gRPC TLS certificate (PEM), re-read on reload [MAGLEV_GRPC_TLS_CERT]"],
        ["grpc-tls-key", None, None, "gRPC TLS private key (PEM) [MAGLEV_GRPC_TLS_KEY]"],
        [
            "grpc-tls-client-ca",
            None,
            None,
            "CA for client certificates; set, clients must present one (mTLS) [MAGLEV_GRPC_TLS_CLIENT_CA]",
        ],
        [
            "grpc-tokens",
            None,
            None,
            "tokens file (names, roles, SHA-256 of tokens); unset: reads open, changes from loopback only "
            "[MAGLEV_GRPC_TOKENS]",
        ],
        [
            "web-allowed-hosts",
            None,
            None,
            "host names the web UI answers to besides its own addresses, comma-separated [MAGLEV_WEB_ALLOWED_HOSTS]",
        ],
        [
            "state-dir",
            None,
            None,
            "where operator overrides (pause, disable, weights) are kept across restarts; empty: not kept "
            "[MAGLEV_STATE_DIR, default " + DEFAULT_STATE_DIR + "]",
        ],
    ]

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        super().__init__()
        self.environ = dict(os.environ if environ is None else environ)
        self.check_file: str | None = None

    def opt_version(self) -> None:
        """print the version and git commit, then exit"""
        print(version_line("maglevd"))
        raise SystemExit(0)

    def parseOptions(self, options: Sequence[str] | None = None) -> None:
        """``--check FILE`` may be followed by more options (``--against-running``): getopt
        stops at the first argument, so FILE is moved to the end first."""
        argv = go_style(sys.argv[1:] if options is None else options, *long_options(self))
        if "--check" in argv:
            i = argv.index("--check") + 1
            if i < len(argv) and not argv[i].startswith("-"):
                argv.append(argv.pop(i))
        super().parseOptions(argv)

    def parseArgs(self, *args: str) -> None:
        if len(args) > 1:
            raise usage.UsageError(f"unexpected arguments: {' '.join(args)}")
        self.check_file = args[0] if args else None

    def postOptions(self) -> None:
        for name, (env, default) in ENVIRONMENT.items():
            if self[name] is None:
                self[name] = self.environ.get(env, default)
        if self.check_file is not None and not self["check"]:
            raise usage.UsageError(f"unexpected argument {self.check_file!r} (did you mean --config?)")
        if self["against-running"] and not self["check"]:
            raise usage.UsageError("--against-running goes with --check")
        if self["check"]:
            path = self.check_file or self["config"]
            code = run_check(path)
            if code == 0 and self["against-running"]:
                code = preview_against_running(path, self["grpc-addr"])
            raise SystemExit(code)
        flags = self._check_flags()
        self.settings = Settings(config=load_or_exit(self["config"]), **flags)
        from .reactor import ensure_asyncio_reactor

        ensure_asyncio_reactor()

    def _check_flags(self) -> dict[str, Any]:
        """Every flag checked and parsed (a bad one is a UsageError naming it); Settings' fields."""
        try:
            log_level = parse_level(self["log-level"])
        except ValueError as e:
            raise usage.UsageError(f"--log-level: {e}") from None
        addrs: dict[str, TcpAddress | None] = {}
        for name in ("grpc-addr", "metrics-addr", "web-addr"):
            value = self[name].strip()
            try:
                addrs[name.replace("-", "_")] = parse_tcp(value) if value else None
            except AddressError as e:
                raise usage.UsageError(f"--{name}: {e}") from None
        for name in ("vpp-api-addr", "vpp-stats-addr"):
            value = self[name].strip()
            if value and not value.startswith("/"):
                raise usage.UsageError(f"--{name}: {value!r} must be an absolute unix socket path (or empty)")
        api_dir = self["vpp-api-dir"].strip() or None
        if api_dir is not None:
            try:
                find_api_dir(api_dir)
            except FileNotFoundError as e:
                raise usage.UsageError(f"--vpp-api-dir: {e}") from None
        return dict(
            config_path=self["config"], **addrs, vpp_api_addr=self["vpp-api-addr"].strip(),
            vpp_stats_addr=self["vpp-stats-addr"].strip(), vpp_api_dir=api_dir, log_level=log_level,
            manhole_addr=self._manhole(), manhole_authorized_keys=self["manhole-authorized-keys"],
            manhole_host_key=self["manhole-host-key"], reflection=parse_bool("reflection", self["reflection"]),
            grpc_tls=self._grpc_tls(), grpc_tokens=self._grpc_tokens(),
            web_allowed_hosts=allowed_hosts("web-allowed-hosts", self["web-allowed-hosts"]),
            state_dir=self["state-dir"].strip(),
            admin_credentials=admin_credentials(self.environ),
            effective=tuple((name, self[name]) for name in ENVIRONMENT),
        )  # fmt: skip

    def _grpc_tls(self) -> TlsFiles | None:
        cert, key, ca = (self[n].strip() for n in ("grpc-tls-cert", "grpc-tls-key", "grpc-tls-client-ca"))
        if not cert and not key:
            if ca:
                raise usage.UsageError("--grpc-tls-client-ca needs --grpc-tls-cert and --grpc-tls-key")
            return None
        if not cert or not key:
            raise usage.UsageError("--grpc-tls-cert and --grpc-tls-key go together")
        files = TlsFiles(cert, key, ca)
        try:
            load_server_material(files)
        except TlsError as e:
            raise usage.UsageError(str(e)) from None
        return files

    def _grpc_tokens(self) -> str:
        path: str = self["grpc-tokens"].strip()
        if path:
            try:
                load_policy(path)
            except ConfigError as e:
                raise usage.UsageError(f"--grpc-tokens: {path}: {e}") from None
        return path

    def _manhole(self) -> TcpAddress | UnixAddress | None:
        value = self["manhole-addr"].strip()
        if not value:
            return None
        try:
            addr = parse_listen(value)
        except AddressError as e:
            raise usage.UsageError(f"--manhole-addr: {e}") from None
        if isinstance(addr, TcpAddress):
            if not addr.host or not addr.is_loopback:
                raise usage.UsageError(
                    f"--manhole-addr: {value!r} is not a loopback address; the SSH manhole only listens on "
                    "127.0.0.1, ::1 or localhost (or use a unix socket path)"
                )
            if not self["manhole-authorized-keys"]:
                raise usage.UsageError("--manhole-addr: an SSH manhole needs --manhole-authorized-keys FILE")
            if not os.path.isfile(self["manhole-authorized-keys"]):
                raise usage.UsageError(f"--manhole-authorized-keys: {self['manhole-authorized-keys']!r} does not exist")
        return addr


def allowed_hosts(flag: str, text: str) -> tuple[str, ...]:
    """``a.example,b`` -> host names (no ports, no schemes; lower case)."""
    names = []
    for part in text.split(","):
        name = part.strip().lower()
        if not name:
            continue
        if "/" in name or " " in name or name.count(":") == 1:
            raise usage.UsageError(
                f"--{flag}: {part.strip()!r} must be a bare host name or address (no scheme or port)"
            )
        names.append(name.strip("[]"))
    return tuple(names)


def long_options(options: usage.Options) -> tuple[set[str], set[str]]:
    """(parameters, flags): the long option names an Options takes, for go_style."""
    parameters = {o[:-1] for o in options.longOpt if o.endswith("=")}
    return parameters, {o for o in options.longOpt if not o.endswith("=")}


def run_check(path: str) -> int:
    """maglevd --check: print the verdict, return the exit code."""
    try:
        cfg = load_config_file(path)
    except ConfigError as e:
        print(f"{path}: {e}", file=sys.stderr)
        return e.kind.value
    print(
        f"{path}: ok ({len(cfg.frontends)} frontends, {len(cfg.backends)} backends, "
        f"{len(cfg.healthchecks)} health checks)"
    )
    for w in fidelity_warnings(cfg):
        print(f"{path}: warning: {w}")
    return 0


def preview_against_running(path: str, grpc_addr: str) -> int:
    """maglevd --check FILE --against-running: the running daemon's preview of a reload to FILE."""
    import grpc

    from .api.gen.maglev.v1 import maglev_pb2 as pb
    from .api.gen.maglev.v1 import maglev_pb2_grpc as pb_grpc
    from .maglevc import render
    from .maglevc.out import Out

    host, _, port = grpc_addr.rpartition(":")
    target = f"{host.strip('[]') and host or 'localhost'}:{port}"
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        with grpc.insecure_channel(target) as channel:
            r = pb_grpc.MaglevStub(channel).PreviewChange(
                pb.PreviewRequest(reload=pb.ReloadPreview(config_yaml=text)), timeout=60
            )
    except grpc.RpcError as e:
        print(f"{path}: cannot preview against the running maglevd at {target}: {e.details()}", file=sys.stderr)
        return 3
    print(f"{path}: against the running maglevd at {target}:")
    render.preview(Out(False), r)
    return 0


def load_or_exit(path: str) -> Config:
    """Load the config for a start; a bad one stops the start with --check's exit codes."""
    try:
        return load_config_file(path)
    except ConfigError as e:
        print(f"maglevd: cannot start, {path}: {e}", file=sys.stderr)
        raise SystemExit(e.kind.value) from None


__all__ = ["MaglevOptions", "ErrorKind", "Settings", "run_check"]
