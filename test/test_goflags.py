"""The original's command lines as written (Go-style flags) and every flag's MAGLEV_* variable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from maglev.goflags import env_defaults, go_style
from maglev.maglevt.cli import parse as maglevt_parse
from maglev.options import MaglevOptions
from maglev.web.frontend import FrontendOptions

from .helpers import MINIMAL, source_env

PARAMS = {"config", "grpc-addr", "reflection"}
FLAGS = {"check", "version"}

REWRITES = [
    (["-config", "f", "-check"], ["--config", "f", "--check"]),
    (["-config=f", "-grpc-addr", ":9090"], ["--config=f", "--grpc-addr", ":9090"]),
    (["--config", "f", "--check"], ["--config", "f", "--check"]),  # GNU style untouched
    (["-c", "f"], ["-c", "f"]),  # a short option stays short
    (["-check=true"], ["--check"]),
    (["-check=false", "-reflection=false"], ["--reflection=false"]),  # a false boolean is not given
    (["-unknown", "x"], ["-unknown", "x"]),  # not ours: left for the parser to refuse
    (["-config", "f", "--", "-check"], ["--config", "f", "--", "-check"]),  # after --: arguments
]


@pytest.mark.parametrize(("argv", "want"), REWRITES)
def test_go_style(argv: list[str], want: list[str]) -> None:
    assert go_style(argv, PARAMS, FLAGS) == want


def test_env_defaults() -> None:
    env = {"X_GC_INTERVAL": "5", "X_ONCE": "true", "X_JSON": "0", "OTHER": "1"}
    assert env_defaults(env, "X", ["gc-interval", "workers"], ["once", "json"]) == {
        "gc_interval": "5",
        "once": True,
        "json": False,
    }
    with pytest.raises(ValueError, match="X_ONCE: expected true or false, got 'perhaps'"):
        env_defaults({"X_ONCE": "perhaps"}, "X", [], ["once"])


def test_maglevd_takes_the_originals_command_lines(tmp_path: Path) -> None:
    cfg = tmp_path / "maglev.yaml"
    cfg.write_text(MINIMAL)
    o = MaglevOptions(environ={})
    o.parseOptions(["-config", str(cfg), "-grpc-addr", "127.0.0.1:9999", "-reflection=false", "-web-addr="])
    grpc = o.settings.grpc_addr
    assert grpc is not None and (grpc.port, o.settings.reflection, o.settings.web_addr) == (9999, False, None)
    with pytest.raises(SystemExit) as info:  # -check is the original's boolean: it checks -config's file
        MaglevOptions(environ={}).parseOptions(["-config", str(cfg), "-check"])
    assert info.value.code == 0


def test_maglevd_frontend_takes_single_dash_flags() -> None:
    o = FrontendOptions({})
    o.parseOptions(["-server", "localhost:9090", "-listen", ":8080"])
    assert [str(s) for s in o.settings.servers] == ["localhost:9090"]
    assert o.settings.listen.port == 8080


def test_maglevt_flags_in_both_forms_and_its_variables() -> None:
    env = {"MAGLEV_MAGLEVT_INTERVAL": "250ms", "MAGLEV_MAGLEVT_KEEPALIVE": "true", "MAGLEV_CONFIG": "a.yaml,b.yaml"}
    args: Any = maglevt_parse(["--timeout", "2s", "-count=3"], env)
    assert (args.interval, args.timeout, args.count, args.keepalive, args.config) == (
        "250ms", "2s", 3, True, ["a.yaml", "b.yaml"]
    )  # fmt: skip
    flag_wins: Any = maglevt_parse(["-interval", "1s", "-keepalive=false", "-config", "c.yaml"], env)
    assert (flag_wins.interval, flag_wins.config) == ("1s", ["c.yaml"])


@pytest.mark.parametrize(
    "program",
    [
        ["-m", "maglev"],
        ["-m", "maglev.maglevc"],
        ["-m", "maglev.maglevt"],
        ["-m", "maglev.vppemu"],
        ["-c", "from maglev.web.frontend import main; main()"],
    ],
)
@pytest.mark.parametrize("flag", ["--version", "-version"])
def test_every_program_says_its_version(program: list[str], flag: str) -> None:
    r = subprocess.run([sys.executable, *program, flag], capture_output=True, text=True, env=source_env(), timeout=60)
    assert r.returncode == 0, r.stderr
    assert "0.1.0 (commit" in r.stdout


def test_the_emulator_reads_its_variables(tmp_path: Path) -> None:
    env = {**source_env(), "MAGLEV_VPPEMU_FLAVOUR": "bogus"}
    r = subprocess.run([sys.executable, "-m", "maglev.vppemu"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2 and "--flavour: expected master or v26.06, got 'bogus'" in r.stderr
