"""maglevd-frontend: its options, and a maglevd that restarts under it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from twisted.python import usage

from maglev.web.frontend import FrontendOptions

from .helpers import MINIMAL, Daemon, free_port, source_env


def parse(argv: list[str], env: dict[str, str] | None = None) -> FrontendOptions:
    o = FrontendOptions(environ=env or {})
    o.parseOptions(argv)
    return o


def test_servers_from_flag_or_environment() -> None:
    o = parse(["--server", "lb1:9090, [2001:db8::1]:9090"])
    assert o.settings.servers == ("lb1:9090", "[2001:db8::1]:9090")
    assert str(o.settings.listen) == "127.0.0.1:8081" and o.settings.admin_credentials is None
    env = {"MAGLEV_SERVERS": "a:1,b:2", "MAGLEV_LISTEN": ":8088", "MAGLEV_LOG_LEVEL": "debug"}
    o = parse([], env)
    assert o.settings.servers == ("a:1", "b:2") and o.settings.listen.port == 8088 and o["log-level"] == "debug"
    assert parse(["--server", "c:3"], env).settings.servers == ("c:3",), "the flag wins"
    assert parse([], {"MAGLEV_SERVER": "d:4"}).settings.servers == ("d:4",), "maglevc's variable works too"
    o = parse(["-s", "a:1"], {"MAGLEV_FRONTEND_USER": "ops", "MAGLEV_FRONTEND_PASSWORD": "pw"})
    assert o.settings.admin_credentials == ("ops", "pw")


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        ([], {}, "--server: give at least one maglevd gRPC address"),
        (["--server", "lb1"], {}, "--server: 'lb1': expected HOST:PORT"),
        (["--server", "a:1,a:1"], {}, "names a server twice"),
        (["--server", "a:1", "--listen", "nowhere"], {}, "--listen: 'nowhere'"),
        (["--server", "a:1", "--log-level", "loud"], {}, "--log-level"),
        (["--server", "a:1"], {"MAGLEV_FRONTEND_USER": "ops"}, "MAGLEV_FRONTEND_PASSWORD is empty"),
        (["--server", "a:1"], {"MAGLEV_FRONTEND_USER": "o:ps", "MAGLEV_FRONTEND_PASSWORD": "x"}, "must not contain"),
    ],
)
def test_bad_options_name_the_problem(argv: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(usage.UsageError, match=re.escape(message)):
        parse(argv, env)


def frontend(args: list[str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", "from maglev.web.frontend import main; main()", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=source_env(), timeout=60)


def test_command_line() -> None:
    r = frontend(["--version"])
    assert r.returncode == 0 and r.stdout.startswith("maglevd-frontend ")
    r = frontend(["--server", "nowhere"])
    assert r.returncode == 64 and "--server: 'nowhere': expected HOST:PORT" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_follows_a_maglevd_that_restarts(tmp_path: Path) -> None:
    cfg = tmp_path / "maglev.yaml"
    cfg.write_text(MINIMAL)
    port = free_port()
    args = ["--config", str(cfg), "--metrics-addr", "", "--vpp-api-addr", "", "--grpc-addr", f"127.0.0.1:{port}"]
    daemon = Daemon(args)
    daemon.event("listening", service="grpc")
    cmd = [sys.executable, "-c", "from maglev.web.frontend import main; main()"]
    fe = Daemon(["--server", f"127.0.0.1:{port}", "--listen", "127.0.0.1:0"], command=cmd)
    try:
        web = "http://" + fe.event("listening", service="web-http")["address"]
        fe.wait_for(lambda r: r.get("event") == "web-source" and r.get("what") == "connected")
        assert state(web)["connected"] is True
        assert daemon.stop() == 0
        rec = fe.wait_for(lambda r: r.get("event") == "web-source" and r.get("what", "").startswith("disconnected"))
        assert "disconnected" in rec["what"]
        gone = state(web)
        assert gone["connected"] is False and gone["error"], "the page says the daemon is gone"
        assert [f["name"] for f in gone["frontends"]] == ["web"], "and still shows what it last knew"
        daemon = Daemon(args)
        daemon.event("listening", service="grpc")
        fe.wait_for(lambda r: r.get("event") == "web-source" and r.get("what") == "connected", timeout=30)
        back = state(web)
        assert back["connected"] is True and back["version"]["config_generation"] == 1
    finally:
        fe.stop()
        fe.kill()
        daemon.stop()
        daemon.kill()


def state(web: str) -> dict[str, Any]:
    with urllib.request.urlopen(web + "/view/api/state/127.0.0.1", timeout=10) as r:
        data: dict[str, Any] = json.loads(r.read())
    return data


@pytest.mark.slow
def test_admin_actions_reach_a_remote_maglevd(tmp_path: Path) -> None:
    """Through maglevd-frontend, an admin POST becomes the same RPC maglevc makes."""
    import base64
    import urllib.error

    import grpc

    from maglev.api.gen.maglev.v1 import maglev_pb2 as pb
    from maglev.api.gen.maglev.v1 import maglev_pb2_grpc as pb_grpc

    cfg = tmp_path / "maglev.yaml"
    cfg.write_text(MINIMAL)
    daemon = Daemon(["--config", str(cfg), "--metrics-addr", "", "--vpp-api-addr", "", "--grpc-addr", "127.0.0.1:0"])
    env = {**source_env(), "MAGLEV_FRONTEND_USER": "ops", "MAGLEV_FRONTEND_PASSWORD": "s3cret"}
    cmd = [sys.executable, "-c", "from maglev.web.frontend import main; main()"]
    fe: Daemon | None = None
    try:
        address = daemon.event("listening", service="grpc")["address"]
        fe = Daemon(["--server", address, "--listen", "127.0.0.1:0"], env=env, command=cmd)
        web = "http://" + fe.event("listening", service="web-http")["address"]
        fe.wait_for(lambda r: r.get("event") == "web-source" and r.get("what") == "connected")
        auth = "Basic " + base64.b64encode(b"ops:s3cret").decode()

        def post(path: str) -> tuple[int, dict[str, Any]]:
            req = urllib.request.Request(
                web + path, data=b"", method="POST", headers={"Authorization": auth, "Origin": web}
            )
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    return r.status, json.loads(r.read())
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read())

        assert post("/admin/api/127.0.0.1/backends/web1/pause") == (
            200,
            {"ok": True, "backend": "web1", "state": "paused", "enabled": True},
        )
        with grpc.insecure_channel(address) as ch:
            info = pb_grpc.MaglevStub(ch).GetBackend(pb.GetBackendRequest(name="web1"), timeout=10)
        assert info.state == "paused", "the remote daemon's state changed"
        code, body = post("/admin/api/127.0.0.1/backends/nope/pause")
        assert (code, body) == (404, {"error": "no such backend 'nope'", "code": "NOT_FOUND"}), "the API's own error"
        code, body = post("/admin/api/127.0.0.1/sync")
        assert code == 503 and body["code"] == "UNAVAILABLE"
    finally:
        if fe is not None:
            fe.stop()
            fe.kill()
        daemon.stop()
        daemon.kill()
