"""The demo's first minute, from a client's side: maglevt against the forwarded VIP while a
backend fails, then the whole primary pool (the README's walk-through)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from maglev.api.gen.maglev.v1 import maglev_pb2 as pb

from .helpers import ROOT, Demo, source_env

pytestmark = pytest.mark.slow


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    d = Demo(tmp_path / "demo")
    yield d
    d.close()


WEB_VIP = "127.0.2.1"
ADDRESSES = {"web0": "127.0.1.1", "web1": "127.0.1.2", "web2": "127.0.1.3", "spare0": "127.0.1.4"}


def forwarding(demo: Demo) -> None:
    """The emulator listens on the web VIP (it says so once VPP holds the VIP)."""
    if not any(r.get("event") == "vppemu-forward" and r.get("address") == WEB_VIP for r in demo.daemon.seen):
        demo.daemon.event("vppemu-forward", address=WEB_VIP, timeout=30)


def weights_applied(demo: Demo, wanted: dict[str, int]) -> None:
    """Until VPP holds these weights on the web VIP (maglevd logs each change it made)."""
    todo = {ADDRESSES[b]: w for b, w in wanted.items()}

    def seen(r: dict[str, object]) -> bool:
        if r.get("event") in ("lb-sync-as-weight", "lb-sync-as-add") and str(r.get("vip", "")).startswith(WEB_VIP):
            if todo.get(str(r.get("address"))) == r.get("weight"):
                del todo[str(r["address"])]
        return not todo

    demo.daemon.wait_for(seen, timeout=30)


def answered(config: Path, count: int = 60) -> dict[str, int]:
    """Which backend answered each of ``count`` new flows to the demo's web VIP (maglevt -json)."""
    r = subprocess.run(
        [sys.executable, "-m", "maglev.maglevt", "-config", str(config), "-filter", "^web$", "-json",
         "-count", str(count), "-interval", "10ms", "-timeout", "2s"],
        capture_output=True, text=True, env=source_env(), timeout=120, cwd=ROOT,
    )  # fmt: skip
    (vip,) = json.loads(r.stdout)["vips"]
    assert vip["vip"].startswith("web http://127.0.2.1:8080"), vip
    return {name: b["count"] for name, b in vip["backends"].items()}


def test_the_vip_answers_from_the_client_side_and_fails_over(demo: Demo) -> None:
    config = demo.tmp / "maglev.yaml"
    forwarding(demo)
    assert set(answered(config)) == {"web0", "web1", "web2"}
    demo.flip("web0", "down")
    weights_applied(demo, {"web0": 0})
    assert set(answered(config)) == {"web1", "web2"}, "new flows avoid the failed backend"
    web0 = demo.stub.GetBackend(pb.GetBackendRequest(name="web0"), timeout=10)
    assert web0.state == "down" and web0.downs == 1 and web0.downtime_seconds > 0
    assert web0.failed_checks >= 3 and web0.checks > web0.failed_checks, "HAProxy's Chk, Dwn and Dwntme"
    vpp = demo.stub.GetVPPInfo(pb.GetVPPInfoRequest(), timeout=10)
    assert vpp.api_sent >= vpp.api_received > 0
    demo.flip("web1", "down")
    demo.flip("web2", "down")
    weights_applied(demo, {"web1": 0, "web2": 0, "spare0": 100})
    assert answered(config, 20) == {"spare0": 20}, "the fallback pool took over"


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=30).stdout


def screen_until(session: str, ok: object, timeout: float = 30.0) -> str:
    """The pane's text once ``ok(text)`` holds; the last text otherwise."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = tmux("capture-pane", "-p", "-t", session)
        if callable(ok) and ok(text):
            return text
        time.sleep(0.1)  # polling tmux's screen: there is no event to wait on
    return text


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_maglevt_shows_the_failover_live_in_tmux(demo: Demo) -> None:
    session = f"demo{os.getpid()}"
    env = " ".join(f"{k}={v}" for k, v in source_env().items() if k in ("PYTHONPATH",))
    command = f"env {env} {sys.executable} -m maglev.maglevt -config {demo.tmp / 'maglev.yaml'} -interval 50ms"
    forwarding(demo)
    tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "30", command)
    try:
        text = screen_until(session, lambda t: all(f"*web{i}=" in t for i in range(3)))
        assert all(f"*web{i}=" in text for i in range(3)), text
        demo.flip("web0", "down")
        weights_applied(demo, {"web0": 0})
        # web0 no longer answers new flows: its mark goes (not seen for 5 s), the others keep theirs
        text = screen_until(session, lambda t: " web0=" in t and "*web1=" in t and "*web2=" in t)
        assert " web0=" in text and "*web1=" in text and "*web2=" in text, text
    finally:
        tmux("kill-session", "-t", session)
