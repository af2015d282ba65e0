"""maglevd as operators run it: a real process, real sockets, real signals."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .helpers import ANY, EXAMPLE, MINIMAL, Daemon, fetch, metric, sample, source_env

pytestmark = pytest.mark.slow


def run_maglevd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "maglev", *args], capture_output=True, text=True, env=source_env(), timeout=60
    )


def test_check_exit_codes(tmp_path: Path) -> None:
    ok = run_maglevd("--check", str(EXAMPLE))
    assert ok.returncode == 0, ok.stderr
    syntax = tmp_path / "syntax.yaml"
    syntax.write_text("maglev:\n  backends: {web0: {address: 192.0.2.1\n")
    r = run_maglevd("--check", str(syntax))
    assert r.returncode == 1
    assert "YAML syntax error" in r.stderr
    missing = tmp_path / "missing.yaml"
    missing.write_text(MINIMAL.replace("web0: {weight: 100}", "web9: {weight: 100}"))
    r = run_maglevd("--config", str(missing), "--check")
    assert r.returncode == 2
    assert "maglev.frontends.web.pools[0].backends.web9: no such backend (line 16)" in r.stderr


def test_version_names_a_commit() -> None:
    r = run_maglevd("--version")
    assert r.returncode == 0
    assert r.stdout.startswith("maglevd 0.1.0 (commit ")
    assert "unknown" not in r.stdout, "a git checkout knows its commit"


def test_bad_flag_is_a_usage_error() -> None:
    r = run_maglevd("--metrics-addr", "nowhere")
    assert r.returncode == 64
    assert "--metrics-addr" in r.stderr and "Traceback" not in r.stderr


def test_port_in_use_fails_the_start(tmp_path: Path) -> None:
    cfg = tmp_path / "maglev.yaml"
    cfg.write_text(MINIMAL)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run_maglevd("--config", str(cfg), "--metrics-addr", f"127.0.0.1:{port}")
    assert r.returncode == 1
    assert "cannot listen" in r.stderr


def manhole_eval(path: str, expression: str, expect: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(expression.encode() + b"\r")
        seen = b""
        while expect not in seen:
            chunk = s.recv(4096)
            if not chunk:
                break
            seen += chunk
    return seen


def test_daemon_lifecycle(tmp_path: Path) -> None:
    cfg = tmp_path / "maglev.yaml"
    cfg.write_text(MINIMAL)
    manhole = tmp_path / "manhole.sock"
    d = Daemon(
        [
            "--config",
            str(cfg),
            "--metrics-addr",
            "127.0.0.1:0",
            "--manhole-addr",
            str(manhole),
            "--vpp-api-addr",
            "",
        ]
    )
    try:
        starting = d.event("starting")
        assert starting["version"] == "0.1.0"
        url = d.metrics_url()
        d.event("started")
        text = fetch(url)
        assert 'maglev_build_info{commit="' in text
        assert metric(text, "maglev_config_generation") == 1
        assert metric(text, "process_resident_memory_bytes")
        assert "maglev_probe_start_lateness_seconds_count" in text
        # One family asked for by name: only it (the per-backend ones are not even read).
        only = fetch(url + "?name[]=maglev_probe_start_lateness_seconds")
        assert "maglev_probe_start_lateness_seconds_bucket{le=" in only
        assert "maglev_probe_total" not in only and "maglev_build_info" not in only

        mode = os.stat(manhole).st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
        answer = manhole_eval(str(manhole), "config.generation * 1000 + 42", b"1042")
        assert b"1042" in answer

        # A broken file: logged as structural, old config kept.
        cfg.write_text("maglev: [\n")
        d.signal(signal.SIGHUP)
        rejected = d.event("config-reload-rejected")
        assert rejected["kind"] == "structural" and rejected["generation"] == 1
        text = fetch(url)
        assert metric(text, "maglev_config_generation") == 1
        assert metric(text, 'maglev_config_reloads_total{result="structural"}') == 1

        # A semantic error is named as such.
        cfg.write_text(MINIMAL.replace("web0: {weight: 100}", "web9: {weight: 100}"))
        d.signal(signal.SIGHUP)
        rejected = d.event("config-reload-rejected")
        assert rejected["kind"] == "semantic"
        assert any("web9: no such backend" in e for e in rejected["errors"])

        # A good one is applied.
        cfg.write_text(
            MINIMAL.replace(
                "    web1: {address: 192.0.2.11, healthcheck: http}\n",
                "    web1: {address: 192.0.2.11, healthcheck: http}\n"
                "    web2: {address: 192.0.2.12, healthcheck: http}\n",
            )
        )
        d.signal(signal.SIGHUP)
        reloaded = d.event("config-reload")
        assert reloaded["generation"] == 2
        assert reloaded["changes"] == {"backends": {"added": ["web2"]}}, "the reload line says what changed"
        assert 0 < reloaded["apply_seconds"] <= reloaded["elapsed"] + 0.001, "the apply's turn, within the reload"
        text = fetch(url)
        assert metric(text, "maglev_config_generation") == 2
        assert metric(text, 'maglev_config_objects{kind="backends"}') == 3
        assert b"2042" in manhole_eval(str(manhole), "config.generation * 1000 + 42", b"2042")

        started = time.monotonic()
        code = d.stop(timeout=10)
        elapsed = time.monotonic() - started
        assert code == 0, "".join(d.stderr)
        assert elapsed < 2.0, f"took {elapsed:.2f}s to exit after SIGTERM"
        assert not manhole.exists(), "the manhole socket is removed on exit"
    finally:
        d.kill()


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit (util-linux)")
def test_the_open_files_limit_is_raised_to_the_hard_limit(tmp_path: Path) -> None:
    """Probes hold sockets: the usual soft limit of 1,024 would fail probes at scale."""
    cfg = tmp_path / "maglev.yaml"
    cfg.write_text(MINIMAL)
    d = Daemon(
        ["--config", str(cfg), "--vpp-api-addr", "", "--metrics-addr", ""],
        command=["prlimit", "--nofile=1024:8192", sys.executable, "-m", "maglev"],
    )
    try:
        assert d.event("open-files")["before"] == 1024
        d.event("started")
        limits = Path(f"/proc/{d.proc.pid}/limits").read_text()
        assert re.search(r"Max open files\s+8192\s+8192", limits), limits
    finally:
        d.kill()


def test_runs_from_outside_the_checkout(tmp_path: Path) -> None:
    """The installed maglevd (not this checkout) starts and stops on SIGINT."""
    cfg = tmp_path / "maglev.yaml"
    cfg.write_text(MINIMAL)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAGLEV_", "PYTHONPATH"))}
    maglevd = Path(sys.executable).parent / "maglevd"
    if not maglevd.exists():
        pytest.fail(f"{maglevd} is missing: install the project into this environment (make test does)")
    d = Daemon(
        ["--config", str(cfg), "--metrics-addr", "127.0.0.1:0"], env=env, cwd=str(tmp_path), command=[str(maglevd)]
    )
    try:
        assert "maglev_build_info" in fetch(d.metrics_url())
        d.signal(signal.SIGINT)
        assert d.proc.wait(10) == 0
    finally:
        d.kill()
    # The installed copy knows its commit without git: the wheel build recorded it.
    r = subprocess.run([str(maglevd), "--version"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=30)
    assert re.fullmatch(r"maglevd 0\.1\.0 \(commit [0-9a-f]{40}(-dirty)?\)\n", r.stdout), r.stdout


def test_demo_runs_on_its_bundled_config_with_flippable_backends(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        control = s.getsockname()[1]
    d = Daemon(
        ["--run-dir", str(tmp_path), "--metrics-addr", "127.0.0.1:0", "--control-port", str(control)],
        command=[sys.executable, "-m", "maglev.demo"],
    )
    try:
        starting = d.event("starting")
        assert starting["settings"]["config"] == str(tmp_path / "maglev.yaml")
        url = d.metrics_url()
        assert metric(fetch(url), 'maglev_config_objects{kind="frontends"}') == 2
        assert (tmp_path / "manhole.sock").exists()
        d.event("backend-transition", backend="web0", new="up")
        import urllib.request

        req = urllib.request.Request(f"http://127.0.0.1:{control}/web0/down", method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.read() == b"web0 down\n"
        down = d.event("backend-transition", backend="web0", new="down")
        assert down["code"] == "L7STS"
        # The demo's emulator follows: web0 drained in VPP.
        drained = d.event("lb-sync-as-weight", address="127.0.1.1")
        assert drained["weight"] == 0 and drained["flush"] is True
        text = fetch(url)
        web0 = {"backend": "web0"}
        assert sample(text, "maglev_backend_state", {**web0, "healthcheck": "http", "state": "down"}) == 1
        assert sample(text, "maglev_backend_transitions_total", {**web0, "from": "up", "to": "down"}) == 1
        assert sample(text, "maglev_vpp_connected") == 1
        assert sample(text, "maglev_frontend_pool_backend_weight", {**web0, "frontend": "web", "pool": "primary"}) == 0
        assert sample(text, "maglev_frontend_table_info", {"frontend": "web", "digest": ANY, "length": ANY}) == 1
        om = fetch(url, headers={"Accept": "application/openmetrics-text; version=1.0.0"})
        assert sample(om, "maglev_backend_state", {**web0, "healthcheck": "http", "state": "down"}, True) == 1
        d.signal(signal.SIGINT)
        assert d.proc.wait(10) == 0
    finally:
        d.kill()
