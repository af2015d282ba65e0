"""Two routers sharing a VIP: two maglevds, each with its own VPP emulator, one with an extra
backend; maglevd-frontend watching both says their tables differ, and which AS, until a
reload makes them the same."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import quote

import grpc
import pytest

from maglev.api.gen.maglev.v1 import maglev_pb2 as pb
from maglev.api.gen.maglev.v1 import maglev_pb2_grpc as pb_grpc

from .emu import API_DIR, emulator
from .helpers import Daemon, source_env

pytestmark = pytest.mark.slow

CONFIG = """\
maglev:
  vpp:
    lb: {{ipv4-src-address: 192.0.2.254, sync-interval: 1h, startup-min-delay: 0s, startup-max-delay: 0s}}
  healthchecks:
    tcp: {{type: tcp, port: {port}, interval: 1s, fast-interval: 0.2s, rise: 1, fall: 2}}
  backends:
{backends}
  frontends:
    web:
      address: 192.0.2.1
      port: 80
      pools: [{{name: p, backends: {{{members}}}}}]
"""


def config(port: int, n: int) -> str:
    backends = "\n".join(f"    b{i}: {{address: 127.0.1.{i}, healthcheck: tcp}}" for i in range(1, n + 1))
    members = ", ".join(f"b{i}: {{}}" for i in range(1, n + 1))
    return CONFIG.format(port=port, backends=backends, members=members)


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as r:
        text: str = r.read().decode()
        return text


def until(what: str, check: Any, timeout: float = 20.0) -> Any:
    """Poll ``check`` (an HTTP read of another process's state) until it holds, bounded."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout}s for {what}")
        time.sleep(0.1)


@pytest.fixture
def routers(tmp_path: Path) -> Iterator[tuple[list[Daemon], list[Path], str, list[str]]]:
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))  # every 127.0.1.x backend answers the TCP check
    listener.listen(64)
    port = listener.getsockname()[1]
    with ExitStack() as stack:
        stack.callback(listener.close)
        daemons: list[Daemon] = []
        configs: list[Path] = []
        addresses: list[str] = []
        for i, n in enumerate((2, 3)):  # the second router has an extra backend
            home = tmp_path / f"vpp{i}"
            home.mkdir()
            emu, _ = stack.enter_context(emulator(home))
            cfg = tmp_path / f"maglev{i}.yaml"
            cfg.write_text(config(port, n))
            d = Daemon(
                [
                    "--config", str(cfg), "--grpc-addr", "127.0.0.1:0", "--metrics-addr", "", "--web-addr", "",
                    "--vpp-api-addr", emu.api_socket, "--vpp-stats-addr", str(emu.stats_socket),
                    "--vpp-api-dir", str(API_DIR),
                ]
            )  # fmt: skip
            stack.callback(d.kill)
            addresses.append(d.event("listening", service="grpc")["address"])
            daemons.append(d)
            configs.append(cfg)
        for a in addresses:  # both programmed, every backend up
            with grpc.insecure_channel(a) as ch:
                stub = pb_grpc.MaglevStub(ch)
                until(f"{a} programmed", lambda s=stub: _serving(s))
        env = {**source_env(), "MAGLEV_FRONTEND_USER": "demo", "MAGLEV_FRONTEND_PASSWORD": "demo"}
        frontend = Daemon(
            ["--server", ",".join(addresses), "--listen", "127.0.0.1:0"],
            env=env,
            command=[sys.executable, "-c", "from maglev.web.frontend import main; main()"],
        )
        stack.callback(frontend.kill)
        web = "http://" + frontend.event("listening", service="web-http")["address"]
        yield daemons, configs, web, addresses


def _serving(stub: Any) -> bool:
    fe = stub.GetFrontend(pb.GetFrontendRequest(name="web"), timeout=5)
    return bool(fe.table.known and all(b.state == "up" for p in fe.pools for b in p.backends))


def test_divergent_tables_are_flagged_until_a_reload_aligns_them(
    routers: tuple[list[Daemon], list[Path], str, list[str]],
) -> None:
    daemons, configs, web, addresses = routers
    found = until(
        "a comparison",
        lambda: [c for c in json.loads(get(web + "/view/api/consistency")) if len(c["digests"]) == 2],
    )
    c = found[0]
    assert c["vip"] == "192.0.2.1 tcp:80" and not c["consistent"]
    names = list(c["digests"])
    assert len(set(c["digests"].values())) == 2
    missing = [x for x in c["differences"] if x.startswith("AS 127.0.1.3:")]
    assert missing == [f"AS 127.0.1.3: in {names[1]}, not in {names[0]}"], c["differences"]
    assert 'maglev_frontend_consistent{vip="192.0.2.1 tcp:80",frontend="web"} 0' in get(web + "/metrics")
    page = get(web + "/view/?scope=" + quote(names[0]))
    assert "tables DIFFER" in page and "new-flow tables differ for 1 VIP" in page and "127.0.1.3" in page
    # the digests are what each maglevd says of its own VPP
    for name, address in zip(names, addresses, strict=True):
        with grpc.insecure_channel(address) as ch:
            table = pb_grpc.MaglevStub(ch).GetFrontend(pb.GetFrontendRequest(name="web"), timeout=5).table
            assert table.digest == c["digests"][name]
    # the first router gets the extra backend too: the tables are the same again
    configs[0].write_text(configs[1].read_text())
    daemons[0].signal(signal.SIGHUP)
    daemons[0].event("config-reload")
    until(
        "the tables to agree",
        lambda: (
            all(x["consistent"] for x in json.loads(get(web + "/view/api/consistency")))
            and 'frontend="web"} 1' in get(web + "/metrics")
        ),
    )
    assert "tables agree" in get(web + "/view/?scope=" + quote(names[0]))


Routers = tuple[list[Daemon], list[Path], str, list[str]]


def post(web: str, path: str, **fields: str) -> tuple[int, dict[str, Any]]:
    data = urllib.parse.urlencode(fields).encode()
    req = urllib.request.Request(web + path, data=data, method="POST")
    req.add_header("Authorization", "Basic ZGVtbzpkZW1v")  # demo:demo
    req.add_header("Origin", web)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def state_of(address: str, backend: str) -> str:
    with grpc.insecure_channel(address) as ch:
        state: str = pb_grpc.MaglevStub(ch).GetBackend(pb.GetBackendRequest(name=backend), timeout=5).state
        return state


def test_fleet_actions_previewed_then_router_by_router(
    routers: tuple[list[Daemon], list[Path], str, list[str]],
) -> None:
    _, _, web, addresses = routers
    names = until("both maglevds read", lambda: [m["name"] for m in json.loads(get(web + "/view/api/maglevds"))])
    until("both states", lambda: len(json.loads(get(web + "/view/api/state"))["maglevds"]) == 2)
    code, p = post(web, "/admin/api/*/backends/b1/pause", preview="1")
    assert code == 200 and p["fleet"] == names
    for name in names:
        v = p["previews"][name]["vips"][0]
        assert v["drained"] == ["127.0.1.1"] and v["moved"] >= v["minimum"] > 0
    assert {state_of(a, "b1") for a in addresses} == {"up"}, "a preview changes nothing"
    code, only = post(web, "/admin/api/*/backends/b3/pause", preview="1")
    assert code == 200 and only["fleet"] == [names[1]], "b3 is only on the second router"
    code, done = post(web, "/admin/api/*/backends/b1/pause")
    assert code == 200 and [(r["maglevd"], r["ok"]) for r in done["results"]] == [(n, True) for n in names]
    assert {state_of(a, "b1") for a in addresses} == {"paused"}
    # the second router refuses: the first keeps its change, and the answer says so
    with grpc.insecure_channel(addresses[1]) as ch:
        pb_grpc.MaglevStub(ch).DisableBackend(pb.BackendRequest(name="b2"), timeout=5)
    code, failed = post(web, "/admin/api/*/backends/b2/pause")
    assert code == 409, failed
    assert (
        failed["error"].startswith(f"failed on {names[1]}: ")
        and f"applied on {names[0]} (not rolled back)" in failed["error"]
    )
    assert [r["ok"] for r in failed["results"]] == [True, False]
    assert (state_of(addresses[0], "b2"), state_of(addresses[1], "b2")) == ("paused", "disabled")
    code, nobody = post(web, "/admin/api/*/backends/nope/pause")
    assert code == 404 and "no watched maglevd has backend 'nope'" in nobody["error"]


def maglevc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "maglev.maglevc", "--color=false", *args],
        capture_output=True, text=True, env=source_env(), timeout=60,
    )  # fmt: skip


def test_maglevc_on_several_routers(routers: Routers) -> None:
    _, _, _, addresses = routers
    both = ",".join(addresses)
    r = maglevc("--server", both, "set", "backend", "b1", "pause", "for", "10m")
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    previews = [out.index(f"== {a}: preview") for a in addresses]
    applied = [out.index(f"== {a}\n") for a in addresses]
    assert max(previews) < min(applied), "previewed on every router before anything is changed"
    assert out.count("127.0.1.1: weight 0, established flows stay") == 2
    assert {state_of(a, "b1") for a in addresses} == {"paused"}
    shown = maglevc("--server", both, "show", "frontend", "web")
    assert shown.returncode == 0 and shown.stdout.count("digest ") == 2
    with grpc.insecure_channel(addresses[1]) as ch:
        pb_grpc.MaglevStub(ch).DisableBackend(pb.BackendRequest(name="b2"), timeout=5)
    failed = maglevc("--server", both, "set", "backend", "b2", "pause")
    assert failed.returncode == 1
    assert (
        f"stopped: failed on {addresses[1]}; applied on {addresses[0]} (not rolled back)"
        in failed.stderr + failed.stdout
    )
    refused = maglevc("--server", both, "set", "backend", "b3", "pause")
    assert refused.returncode == 1 and "nothing was changed anywhere" in refused.stderr + refused.stdout
    assert state_of(addresses[1], "b3") == "up", "b3 is only on the second router: the first refused the preview"
    alone = maglevc("--server", both)
    assert alone.returncode == 2 and "give a command" in alone.stderr
