"""maglevt: statistics, the screen, real loopback VIPs, and the TUI in tmux."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.task import deferLater
from twisted.internet.utils import getProcessOutputAndValue
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from maglev.maglevt.stats import Board, ErrorEntry, Outcome, VipStats, percentile
from maglev.maglevt.ui import render

from .helpers import ROOT, source_env
from .servers import port_of, refused_port, stop


def test_percentiles_tally_and_counts() -> None:
    board = Board()
    for i in range(100):
        board.record("v", Outcome(True, 0.001 * (i + 1), "200", "", "web0" if i % 4 else "web1"), now=float(i))
    board.record("v", Outcome(False, 1.0, "timeout", "timeout"), now=100.0)
    s = board.vips["v"].summary(now=100.0)
    assert (s["total"], s["failed"], s["ok_percent"]) == (101, 1, 99.01)
    assert (s["p50_ms"], s["p99_ms"], s["max_ms"]) == (51.0, 99.0, 100.0)
    assert s["backends"] == {"web0": {"count": 75, "active": True}, "web1": {"count": 25, "active": True}}
    assert board.error_totals["timeout"] == 1
    assert board.vips["v"].summary(now=200.0)["backends"]["web1"]["active"] is False  # type: ignore[index]


def test_spikes_are_classified() -> None:
    errors: deque[ErrorEntry] = deque()
    v = VipStats("v")
    for _ in range(30):
        v.record(Outcome(True, 0.002, "200"), 0.0, errors)
    v.record(Outcome(True, 0.020, "200"), 0.0, errors)  # slower, but under the 50 ms floor
    v.record(Outcome(True, 0.300, "200"), 0.0, errors)
    assert [e.kind for e in errors] == ["spike"]
    assert percentile([], 0.5) == 0.0


def test_render_fits_the_terminal() -> None:
    board = Board()
    board.record("web http://192.0.2.1:80", Outcome(True, 0.004, "200", "", "web0"), 1.0)
    board.record("web http://192.0.2.1:80", Outcome(False, 1.0, "timeout", "timeout"), 2.0)
    lines = render(board, 60, 10, 3.0, "lb1.example.net", "X-Backend")
    assert lines[0].startswith("maglevt on lb1.example.net")
    assert any(line.startswith("web http://192.0.2.1:80") for line in lines)
    assert any("*web0=1" in line for line in lines)
    assert all(len(line) <= 60 for line in lines) and len(lines) <= 10
    assert any("timeout=1" in line for line in lines)


class Backends(Resource):
    """Answers like two backends behind a VIP, in turn."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def render_GET(self, request: Request) -> bytes:
        self.n += 1
        request.setHeader("X-Backend", "web0" if self.n % 2 else "web1")
        return b"ok\n"


class Stalls(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> int:
        return NOT_DONE_YET


def reactor() -> Any:
    from twisted.internet import reactor as r

    return r


def write_config(tmp: Path, http_port: int, stall_port: int, tcp_port: int) -> Path:
    cfg = tmp / "maglev.yaml"
    cfg.write_text(
        f"""\
maglev:
  vpp: {{lb: {{ipv4-src-address: 192.0.2.254}}}}
  healthchecks:
    http: {{type: http, port: 80}}
    tcp: {{type: tcp, port: 22}}
  backends:
    web0: {{address: 192.0.2.10, healthcheck: http}}
    ssh0: {{address: 192.0.2.20, healthcheck: tcp}}
  frontends:
    web: {{address: 127.0.0.1, port: {http_port}, pools: [{{name: p, backends: {{web0: {{}}}}}}]}}
    stuck: {{address: 127.0.0.2, port: {stall_port}, pools: [{{name: p, backends: {{web0: {{}}}}}}]}}
    ssh: {{address: 127.0.0.3, port: {tcp_port}, pools: [{{name: p, backends: {{ssh0: {{}}}}}}]}}
"""
    )
    return cfg


@pytest_twisted.ensureDeferred
async def test_json_mode_against_real_vips(tmp_path: Path) -> None:
    web = reactor().listenTCP(0, Site(Backends()), interface="127.0.0.1")
    stuck = reactor().listenTCP(0, Site(Stalls()), interface="127.0.0.2")
    try:
        cfg = write_config(tmp_path, port_of(web), port_of(stuck), refused_port("127.0.0.3"))
        out, err, code = await getProcessOutputAndValue(
            sys.executable,
            [
                "-m",
                "maglev.maglevt",
                "-config",
                str(cfg),
                "-json",
                "-count",
                "10",
                "-interval",
                "10ms",
                "-timeout",
                "300ms",
            ],
            env=source_env(),
            path=str(ROOT),
        )
    finally:
        await stop(web)
        await stop(stuck)
    assert code == 1, err  # some VIPs failed
    result = json.loads(out)
    vips = {v["vip"].split()[0]: v for v in result["vips"]}
    assert vips["web"]["failed"] == 0 and vips["web"]["total"] == 10
    assert {k: v["count"] for k, v in vips["web"]["backends"].items()} == {"web0": 5, "web1": 5}
    assert vips["stuck"]["failed"] == 10
    assert vips["ssh"]["failed"] == 10
    assert result["errors"]["timeout"] == 10 and result["errors"]["net-err"] == 10


def test_bad_arguments_are_errors(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "maglev.maglevt", "-config", str(tmp_path / "none.yaml"), "-json"],
        capture_output=True, text=True, env=source_env(), timeout=60,
    )  # fmt: skip
    assert r.returncode == 2 and "cannot read" in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "maglev.maglevt", "-interval", "fast"],
        capture_output=True,
        text=True,
        env=source_env(),
        timeout=60,
    )
    assert r.returncode == 2 and "invalid duration" in r.stderr


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=30).stdout


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
@pytest_twisted.ensureDeferred
async def test_tui_in_tmux_shows_vips_and_quits_on_q(tmp_path: Path) -> None:
    web = reactor().listenTCP(0, Site(Backends()), interface="127.0.0.1")
    stuck = reactor().listenTCP(0, Site(Stalls()), interface="127.0.0.2")
    session = f"maglevt{os.getpid()}"
    try:
        cfg = write_config(tmp_path, port_of(web), port_of(stuck), refused_port("127.0.0.3"))
        env = " ".join(f"{k}={v}" for k, v in source_env().items() if k in ("PYTHONPATH",))
        command = f"env {env} {sys.executable} -m maglev.maglevt -config {cfg} -interval 50ms -timeout 200ms"
        status = tmp_path / "status"  # its exit status, written by the shell: tmux's pane_dead_status can lag
        tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "30", f"sh -c '{command}; echo $? > {status}'")
        screen = ""
        for _ in range(300):  # until the rows are drawn, at most 30 s (a loaded machine is slow to start it)
            screen = tmux("capture-pane", "-p", "-t", session)
            if "X-Backend: *web" in screen and "stuck http://127.0.0.2" in screen and "timeout=" in screen:
                break
            await deferLater(reactor(), 0.1, lambda: None)
        assert "web http://127.0.0.1" in screen and "ssh tcp://127.0.0.3" in screen, screen
        assert "X-Backend: *web" in screen, screen
        tmux("resize-window", "-t", session, "-x", "80", "-y", "20")
        for _ in range(200):  # redrawn for the new size, at most 20 s
            screen = tmux("capture-pane", "-p", "-t", session)
            if screen and max(len(line) for line in screen.splitlines()) <= 80 and "web http" in screen:
                break
            await deferLater(reactor(), 0.1, lambda: None)
        assert "web http://127.0.0.1" in screen and max(len(line) for line in screen.splitlines()) <= 80
        tmux("send-keys", "-t", session, "q")
        for _ in range(200):  # until it has exited, at most 20 s
            if status.exists() and status.read_text().strip():
                break
            await deferLater(reactor(), 0.1, lambda: None)
        assert status.read_text().strip() == "0", "maglevt quits on q with status 0"
    finally:
        tmux("kill-session", "-t", session)
        await stop(web)
        await stop(stuck)
