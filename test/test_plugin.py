"""twistd and twist find the maglev plugin in the installed environment and run it."""

from __future__ import annotations

import configparser
import os
import signal
import subprocess
from pathlib import Path

import pytest

from .helpers import MINIMAL, ROOT, VENV_BIN, Daemon, fetch, source_env

pytestmark = pytest.mark.slow


def installed_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("MAGLEV_", "PYTHONPATH"))}


def tool(name: str) -> str:
    path = VENV_BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run the tests from the project's environment (make test)")
    return str(path)


@pytest.mark.parametrize("runner", ["twistd", "twist"])
def test_help_lists_maglev_from_the_installed_environment(runner: str, tmp_path: Path) -> None:
    r = subprocess.run(
        [tool(runner), "--help"], capture_output=True, text=True, cwd=tmp_path, env=installed_env(), timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert any(line.split()[:1] == ["maglev"] for line in r.stdout.splitlines()), r.stdout


@pytest.mark.parametrize(
    "command",
    [
        ["twistd", "-n", "--logger=maglev.log.observer", "--pidfile=", "maglev"],
        ["twistd", "-n", "--reactor=asyncio", "--logger=maglev.log.observer", "--pidfile=", "maglev"],
        ["twist", "maglev"],
        ["twist", "--reactor=asyncio", "maglev"],
    ],
    ids=["twistd", "twistd-asyncio", "twist", "twist-asyncio"],
)
def test_runners_start_the_service_and_stop_cleanly(command: list[str], tmp_path: Path) -> None:
    cfg = tmp_path / "maglev.yaml"
    cfg.write_text(MINIMAL)
    d = Daemon(
        ["--config", str(cfg), "--metrics-addr", "127.0.0.1:0"],
        env=source_env(),
        cwd=str(tmp_path),
        command=[tool(command[0]), *command[1:]],
    )
    try:
        assert "maglev_config_generation 1.0" in fetch(d.metrics_url())
        d.signal(signal.SIGTERM)
        d.event("stopping")
        # twistd and twist shut down cleanly, then re-raise the signal so the exit status names it.
        assert d.proc.wait(10) in (0, -signal.SIGTERM), "".join(d.stderr)
        levels = {r.get("level") or (r.get("log_level") or {}).get("name") for r in d.seen}
        assert "info" in levels and not levels & {"error", "critical"}, levels
    finally:
        d.kill()


@pytest.mark.parametrize("command", [["twistd", "-n", "--reactor=poll"], ["twist", "--reactor=poll"]])
def test_another_reactor_is_refused_with_what_to_run(command: list[str], tmp_path: Path) -> None:
    cfg = tmp_path / "maglev.yaml"
    cfg.write_text(MINIMAL)
    r = subprocess.run(
        [tool(command[0]), *command[1:], "maglev", "--config", str(cfg)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=source_env(),
        timeout=60,
    )
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "maglev needs the asyncio reactor but PollReactor is installed" in out
    assert "twist --reactor=asyncio maglev" in out


def test_setup_cfg_lists_every_package() -> None:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    listed = set(parser["options"]["packages"].split())
    found = {".".join(p.relative_to(ROOT).parts[:-1]) for p in (ROOT / "maglev").rglob("__init__.py")}
    assert found <= listed, f"add to setup.cfg packages: {sorted(found - listed)}"
    assert "twisted.plugins" in listed
    assert not (ROOT / "twisted_plugins" / "__init__.py").exists(), "twisted/plugins must not be a regular package"
