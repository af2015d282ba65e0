"""``maglevc``: one-shot commands and an interactive shell against maglevd's gRPC API."""

from __future__ import annotations

import argparse
import json
import os
import select
import shlex
import sys
import termios
import threading
import time
import tty
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import grpc
from google.protobuf import json_format

from .. import __version__
from ..api.client import ClientAuth, ClientTls, read_token_file
from ..api.gen.maglev.v1 import maglev_pb2 as pb
from ..api.tls import TlsError
from ..config.durations import parse_duration
from ..version import version_line
from . import render
from .out import Out, age, ago, clock, left
from .tree import Parsed, ParseError, candidates, help_lines, parse


class Shell:
    def __init__(self, server: str, out: Out, auth: ClientAuth | None = None) -> None:
        self.server = server
        self.out = out
        auth = auth or ClientAuth()
        self.channel = auth.channel(server)
        self.stub: Any = auth.stub(self.channel)
        self._names: dict[str, tuple[float, list[str]]] = {}

    # --- live names for completion -------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        cached = self._names.get(kind)
        if cached and time.monotonic() - cached[0] < 5:
            return cached[1]
        try:
            if kind == "frontend":
                values = [f.name for f in self.stub.ListFrontends(pb.ListFrontendsRequest(), timeout=3).frontends]
            elif kind == "backend":
                values = [b.name for b in self.stub.ListBackends(pb.ListBackendsRequest(), timeout=3).backends]
            elif kind == "healthcheck":
                values = [
                    h.name for h in self.stub.ListHealthChecks(pb.ListHealthChecksRequest(), timeout=3).healthchecks
                ]
            elif kind == "pool":
                values = sorted(
                    {
                        p.name
                        for f in self.stub.ListFrontends(pb.ListFrontendsRequest(), timeout=3).frontends
                        for p in f.pools
                    }
                )
            else:
                values = []
        except grpc.RpcError:
            values = []
        self._names[kind] = (time.monotonic(), values)
        return values

    # --- running ----------------------------------------------------------------------
    def run(self, line: str) -> bool:
        """Run one command line; False when it failed."""
        try:
            tokens = shlex.split(line)
        except ValueError as e:
            self.out.error(f"cannot read the line: {e}")
            return False
        if not tokens:
            return True
        if tokens[-1].endswith("?"):  # `show ?`: what may follow; `show ba?`: what `ba` may be
            asked = " ".join(tokens[:-1]) + " " if tokens[-1] == "?" else " ".join([*tokens[:-1], tokens[-1][:-1]])
            self.out.line(line)
            for h in help_lines(asked.lstrip(), self.names):
                self.out.line(h)
            return True
        try:
            parsed = parse(tokens)
        except ParseError as e:
            self.out.error(str(e))
            return False
        try:
            getattr(self, "do_" + parsed.action)(parsed)
        except grpc.RpcError as e:
            self.out.error(e.details() or e.code().name)  # the server's message, no gRPC boilerplate
            return False
        except _Failed:
            return False
        return True

    # --- commands -----------------------------------------------------------------------
    def do_quit(self, p: Parsed) -> None:
        raise SystemExit(0)

    def do_show_version(self, p: Parsed) -> None:
        v = self.stub.GetVersion(pb.GetVersionRequest(), timeout=10)
        self.out.kv("maglevc", __version__)
        self.out.kv("maglevd", f"{v.version} (commit {v.commit})")
        self.out.kv("server", self.server)
        self.out.kv("config", f"generation {v.config_generation}")
        self.out.kv("uptime", age(v.started))
        if v.api_security:
            self.out.kv("api", v.api_security)
        for warning in v.warnings:
            self.out.kv("warning", warning)

    def do_show_frontends(self, p: Parsed) -> None:
        r = self.stub.ListFrontends(pb.ListFrontendsRequest(), timeout=10)
        for f in r.frontends:
            render.frontend(self.out, f)
        for d in r.draining_vips:
            render.draining_vip(self.out, d)

    def do_show_frontend(self, p: Parsed) -> None:
        render.frontend(self.out, self.stub.GetFrontend(pb.GetFrontendRequest(name=p.args["frontend"]), timeout=10))

    def do_show_backends(self, p: Parsed) -> None:
        backends = self.stub.ListBackends(pb.ListBackendsRequest(), timeout=10).backends
        heads = (("backend", 16), ("state", 9), ("address", 28), ("check", 12), ("last", 8), ("since", 8))
        self.out.line(" ".join(self.out.label(text, width) for text, width in heads))
        for b in backends:
            self.out.line(
                f"{b.name:<16} {self.out.state(b.state, 9)} {b.address:<28} {b.healthcheck:<12} "
                f"{b.last_probe.code or '-':<8} {age(b.state_since):<8}"
            )

    def do_show_backend(self, p: Parsed) -> None:
        render.backend(self.out, self.stub.GetBackend(pb.GetBackendRequest(name=p.args["backend"]), timeout=10))

    def do_show_healthchecks(self, p: Parsed) -> None:
        for h in self.stub.ListHealthChecks(pb.ListHealthChecksRequest(), timeout=10).healthchecks:
            render.healthcheck(self.out, h)

    def do_show_healthcheck(self, p: Parsed) -> None:
        render.healthcheck(
            self.out, self.stub.GetHealthCheck(pb.GetHealthCheckRequest(name=p.args["healthcheck"]), timeout=10)
        )

    def do_vpp_info(self, p: Parsed) -> None:
        v = self.stub.GetVPPInfo(pb.GetVPPInfoRequest(), timeout=10)
        self.out.kv("version", v.version)
        self.out.kv("build-date", v.build_date)
        self.out.kv("build-dir", v.build_directory)
        self.out.kv("vpp-pid", v.pid)
        self.out.kv(
            "vpp-boottime",
            f"{clock(v.boottime_ns)} ({ago(v.boottime_ns / 1e9)})",
        )
        self.out.kv(
            "connected",
            f"{clock(v.connecttime_ns)} ({ago(v.connecttime_ns / 1e9)})",
        )
        self.out.kv("api-mode", v.api_mode)

    def do_vpp_lb_state(self, p: Parsed) -> None:
        render.vpp_lb_state(self.out, self.stub.GetVPPLBState(pb.GetVPPLBStateRequest(), timeout=10))

    def do_vpp_lb_counters(self, p: Parsed) -> None:
        c = self.stub.GetVPPLBCounters(pb.GetVPPLBCountersRequest(), timeout=10)
        self.out.line(f"{self.out.label('frontend', 16)} {self.out.label('next', 12)} {self.out.label('first', 12)} "
                      f"{self.out.label('untracked', 10)} {self.out.label('no-server', 10)}")  # fmt: skip
        for v in c.vips:
            self.out.line(f"{v.frontend:<16} {v.next:<12} {v.first:<12} {v.untracked:<10} {v.no_server:<10}")

    def do_sync(self, p: Parsed) -> None:
        r = self.stub.SyncVPPLBState(pb.SyncVPPLBStateRequest(frontend=p.args.get("frontend", "")), timeout=60)
        self.out.line(f"synced: {r.changes} change{'s' if r.changes != 1 else ''}")
        for e in r.errors:
            self.out.error(e)
        if r.errors:
            raise _Failed

    def _backend_action(self, rpc: Callable[..., Any], p: Parsed) -> None:
        b = rpc(pb.BackendRequest(name=p.args["backend"], for_seconds=_seconds(p)), timeout=10)
        until = f" for {left(b.override_seconds_left)}" if b.override_seconds_left else ""
        self.out.line(f"{b.name}: {self.out.state(b.state)}{until}")

    def do_backend_pause(self, p: Parsed) -> None:
        self._backend_action(self.stub.PauseBackend, p)

    def do_backend_resume(self, p: Parsed) -> None:
        self._backend_action(self.stub.ResumeBackend, p)

    def do_backend_enable(self, p: Parsed) -> None:
        self._backend_action(self.stub.EnableBackend, p)

    def do_backend_disable(self, p: Parsed) -> None:
        self._backend_action(self.stub.DisableBackend, p)

    def do_set_weight(self, p: Parsed) -> None:
        req = pb.SetWeightRequest(
            frontend=p.args["frontend"], pool=p.args["pool"], backend=p.args["backend"], weight=int(p.args["weight"]),
            flush="flush" in p.flags, for_seconds=_seconds(p),
        )  # fmt: skip
        render.frontend(self.out, self.stub.SetFrontendPoolBackendWeight(req, timeout=30))

    def _preview(self, req: pb.PreviewRequest) -> None:
        render.preview(self.out, self.stub.PreviewChange(req, timeout=60))

    def do_preview_backend_pause(self, p: Parsed) -> None:
        self._preview(pb.PreviewRequest(backend=pb.BackendChange(name=p.args["backend"], action="pause")))

    def do_preview_backend_resume(self, p: Parsed) -> None:
        self._preview(pb.PreviewRequest(backend=pb.BackendChange(name=p.args["backend"], action="resume")))

    def do_preview_backend_enable(self, p: Parsed) -> None:
        self._preview(pb.PreviewRequest(backend=pb.BackendChange(name=p.args["backend"], action="enable")))

    def do_preview_backend_disable(self, p: Parsed) -> None:
        self._preview(pb.PreviewRequest(backend=pb.BackendChange(name=p.args["backend"], action="disable")))

    def do_preview_set_weight(self, p: Parsed) -> None:
        req = pb.SetWeightRequest(
            frontend=p.args["frontend"], pool=p.args["pool"], backend=p.args["backend"], weight=int(p.args["weight"]),
            flush="flush" in p.flags,
        )  # fmt: skip
        self._preview(pb.PreviewRequest(set_weight=req))

    def do_preview_reload(self, p: Parsed) -> None:
        self._preview(pb.PreviewRequest(reload=pb.ReloadPreview()))

    def do_release_isolation(self, p: Parsed) -> None:
        r = self.stub.ReleaseCheckerIsolation(pb.ReleaseCheckerIsolationRequest(), timeout=30)
        self.out.line(f"released: {', '.join(r.released)}" if r.released else "the guard was not holding anything")

    def do_config_check(self, p: Parsed) -> None:
        r = self.stub.CheckConfig(pb.CheckConfigRequest(), timeout=30)
        if r.ok:
            self.out.line("configuration ok")
            return
        self.out.error(
            ("structural error:\n" + r.parse_error) if r.parse_error else ("semantic error:\n" + r.semantic_error)
        )
        raise _Failed

    def do_config_reload(self, p: Parsed) -> None:
        r = self.stub.ReloadConfig(pb.ReloadConfigRequest(), timeout=60)
        if r.ok:
            self.out.line(f"configuration reloaded: generation {r.generation}")
            return
        text = r.parse_error or r.semantic_error or r.apply_error
        self.out.error(f"reload refused, generation {r.generation} still running:\n{text}")
        raise _Failed

    def do_watch(self, p: Parsed) -> None:
        kinds = {k: k in p.flags for k in ("backend", "frontend", "vpp")}
        if not any(kinds.values()):  # no kind named: all of them; `log` adds log records to them
            kinds = dict.fromkeys(kinds, True)
        req = pb.WatchRequest(
            log="log" in p.flags, log_level=p.args.get("log.level", "info") if "log" in p.flags else "", **kinds
        )
        limit = int(p.args["num.num"]) if "num.num" in p.args else None
        stream = self.stub.WatchEvents(req)
        stop = _KeyStop(stream)  # any key (cbreak mode) or Ctrl-C ends it
        seen = 0
        try:
            for event in stream:
                body = json_format.MessageToDict(event, preserving_proto_field_name=True)
                print(json.dumps(body, separators=(",", ":")), flush=True)
                seen += 1
                if limit is not None and seen >= limit:
                    break
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.CANCELLED:
                raise
        except KeyboardInterrupt:
            pass
        finally:
            stream.cancel()
            stop.close()


class _Failed(Exception):
    """The command ran but reported failure (already printed)."""


class _KeyStop:
    """In a terminal: cbreak mode, and the first key cancels the stream."""

    def __init__(self, stream: Any) -> None:
        self.fd: int | None = sys.stdin.fileno() if sys.stdin.isatty() else None
        self.saved: Any = None
        if self.fd is None:
            return
        fd: int = self.fd
        self.saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)

        # close() wakes the reader through this pipe and joins it, so keys typed at the next
        # prompt are never eaten by a reader still waiting here.
        self.wake_r, self.wake_w = os.pipe()

        def wait() -> None:
            ready, _, _ = select.select([fd, self.wake_r], [], [])
            if self.wake_r not in ready:
                os.read(fd, 64)
                stream.cancel()

        self.reader = threading.Thread(target=wait, daemon=True)
        self.reader.start()

    def close(self) -> None:
        if self.fd is None:
            return
        os.write(self.wake_w, b"x")
        self.reader.join()
        os.close(self.wake_r)
        os.close(self.wake_w)
        if self.saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)


NOTHING_TO_INSERT = ["<", ">"]  # two matches with nothing in common: readline lists, inserts nothing


def interactive(shell: Shell) -> None:
    import readline

    def complete(text: str, state: int) -> str | None:
        line = readline.get_line_buffer()[: readline.get_endidx()]
        options = [o + " " for o in candidates(line, shell.names)]
        if not options:  # an argument or the end: nothing to insert, but the help to show
            options = NOTHING_TO_INSERT
        return options[state] if state < len(options) else None

    def show_help(substitution: str, matches: Sequence[str], longest: int) -> None:
        """Tab's list and ``?``: each possible next word with what it means (birdc style)."""
        line = readline.get_line_buffer()
        print()
        for h in help_lines(line, shell.names) or ["  (nothing fits here)"]:
            print(h)
        print(f"maglev> {line}", end="", flush=True)

    readline.set_completer(complete)
    readline.set_completion_display_matches_hook(show_help)
    readline.set_completer_delims(" \t")
    readline.parse_and_bind("tab: complete")
    readline.parse_and_bind("set show-all-if-ambiguous on")  # one Tab lists the choices
    readline.parse_and_bind('"?": possible-completions')  # context help; ? is not put in the line
    histfile = os.path.expanduser("~/.maglevc_history")
    try:
        readline.read_history_file(histfile)
    except OSError:
        pass
    print(f"maglevc {__version__} connected to {shell.server}; tab completes, ? helps, quit leaves")
    try:
        while True:
            try:
                line = input("maglev> ")
            except EOFError:
                print()
                return
            except KeyboardInterrupt:
                print()
                continue
            shell.run(line)
    finally:
        try:
            readline.write_history_file(histfile)
        except OSError:
            pass


def _seconds(p: Parsed) -> float:
    return parse_duration(p.args["duration"]) if "duration" in p.args else 0.0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="maglevc", description="maglevd's command line: one command, or a shell without one"
    )
    p.add_argument(
        "--server",
        "-server",
        default=None,
        help="maglevd gRPC address, or several comma-separated: a command then runs on each, a change is "
        "previewed on each and applied router by router [MAGLEV_SERVER, default localhost:9090]",
    )
    p.add_argument(
        "--color",
        "-color",
        default=None,
        nargs="?",
        const="true",
        help="colour: true or false [MAGLEV_COLOR, default: when standard output is a terminal]",
    )
    for flag, env, what in (
        ("tls-ca", "MAGLEV_TLS_CA", "talk TLS, trusting this CA (PEM)"),
        ("tls-cert", "MAGLEV_TLS_CERT", "client certificate for mTLS (PEM)"),
        ("tls-key", "MAGLEV_TLS_KEY", "the client certificate's key (PEM)"),
        ("tls-server-name", "MAGLEV_TLS_SERVER_NAME", "the name to expect in maglevd's certificate"),
        ("token-file", "MAGLEV_TOKEN_FILE", "file holding the API token (sent as authorization: Bearer)"),
    ):
        p.add_argument(f"--{flag}", f"-{flag}", default=None, help=f"{what} [{env}]")
    p.add_argument("--version", "-version", action="store_true", help="print the version and exit")
    p.add_argument("command", nargs=argparse.REMAINDER, help="a command, e.g. show backends")
    return p


def main(argv: list[str] | None = None) -> None:
    p = parser()
    args = p.parse_args(argv)
    if args.version:
        print(version_line("maglevc"))
        return
    colour_text = args.color if args.color is not None else os.environ.get("MAGLEV_COLOR", "")
    if colour_text and colour_text.lower() not in ("true", "false", "1", "0", "yes", "no"):
        p.error(f"--color: expected true or false, got {colour_text!r}")
    # escapes only into a terminal, unless asked for: `maglevc show backends | grep` stays plain
    colour = colour_text.lower() in ("true", "1", "yes") if colour_text else sys.stdout.isatty()
    server = args.server or os.environ.get("MAGLEV_SERVER") or "localhost:9090"
    try:
        auth = client_auth(args, os.environ)
    except (TlsError, ValueError) as e:
        p.error(str(e))
    servers = [s.strip() for s in server.split(",") if s.strip()]
    if len(servers) > 1:
        if not args.command:
            p.error("several servers: give a command (the shell talks to one maglevd)")
        from .fleet import run_on_each

        shells = [Shell(s, Out(colour), auth) for s in servers]
        ok = run_on_each(shells, " ".join(shlex.quote(t) for t in args.command))
        raise SystemExit(0 if ok else 1)
    shell = Shell(server, Out(colour), auth)
    try:
        if args.command:
            ok = shell.run(" ".join(shlex.quote(t) for t in args.command))
            sys.stdout.flush()  # a closed pipe shows here, not at exit
            raise SystemExit(0 if ok else 1)
        interactive(shell)
    except BrokenPipeError:
        # `maglevc show backends | head`: the reader is gone, so is our output; no traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise SystemExit(0) from None


def client_auth(args: argparse.Namespace, environ: Mapping[str, str]) -> ClientAuth:
    """The TLS and token flags (each falling back to its MAGLEV_* variable), checked."""

    def value(name: str, env: str) -> str:
        flag = getattr(args, name.replace("-", "_"))
        return (flag if flag is not None else environ.get(env, "")).strip()

    tls = ClientTls(
        value("tls-ca", "MAGLEV_TLS_CA"),
        value("tls-cert", "MAGLEV_TLS_CERT"),
        value("tls-key", "MAGLEV_TLS_KEY"),
        value("tls-server-name", "MAGLEV_TLS_SERVER_NAME"),
    )
    tls.check()
    token_file = value("token-file", "MAGLEV_TOKEN_FILE")
    return ClientAuth(tls, read_token_file(token_file) if token_file else None)
