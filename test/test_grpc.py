"""The gRPC API against a real daemon (the demo: real backends, the VPP emulator) over real channels."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from maglev.api.gen.maglev.v1 import maglev_pb2 as pb
from maglev.api.gen.maglev.v1 import maglev_pb2_grpc as pb_grpc
from maglev.api.streams import QUEUE_LIMIT, STOP, Subscriber

from .helpers import MINIMAL, Daemon, Demo, source_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    d = Demo(tmp_path_factory.mktemp("demo"))
    yield d
    d.close()


def code_of(fn: Any, *args: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        fn(*args, timeout=10)
    code: grpc.StatusCode = info.value.code()
    return code


def test_version_and_frontends(demo: Demo) -> None:
    v = demo.stub.GetVersion(pb.GetVersionRequest(), timeout=10)
    assert v.version == "0.1.0" and v.config_generation == 1
    fronts = demo.stub.ListFrontends(pb.ListFrontendsRequest(), timeout=10).frontends
    assert [f.name for f in fronts] == ["web", "web-any"], "config order"
    web = demo.stub.GetFrontend(pb.GetFrontendRequest(name="web"), timeout=10)
    assert (web.address, web.protocol, web.port, web.encap, web.state) == ("127.0.2.1", "tcp", 8080, "gre4", "up")
    assert [p.name for p in web.pools] == ["primary", "fallback"] and web.pools[0].active
    members = {b.name: b for b in web.pools[0].backends}
    assert (members["web2"].weight, members["web2"].effective_weight) == (50, 50)
    assert code_of(demo.stub.GetFrontend, pb.GetFrontendRequest(name="nope")) is grpc.StatusCode.NOT_FOUND


def test_list_backends_pages_and_filters(demo: Demo) -> None:
    s = demo.stub
    first = s.ListBackends(pb.ListBackendsRequest(page_size=3), timeout=10)
    assert [b.name for b in first.backends] == ["web0", "web1", "web2"] and first.total == 4 and first.next_page_token
    rest = s.ListBackends(pb.ListBackendsRequest(page_size=3, page_token=first.next_page_token), timeout=10)
    assert [b.name for b in rest.backends] == ["spare0"] and not rest.next_page_token
    any_port = s.ListBackends(pb.ListBackendsRequest(frontend="web-any"), timeout=10)
    assert [b.name for b in any_port.backends] == ["web0", "web1"] and any_port.total == 2
    up = s.ListBackends(pb.ListBackendsRequest(state=["up"]), timeout=10)
    assert {b.name for b in up.backends} == {b.name for b in first.backends if b.state == "up"} | (
        {"spare0"} if rest.backends[0].state == "up" else set()
    )
    for bad, code, said in (
        (pb.ListBackendsRequest(page_size=-1), grpc.StatusCode.INVALID_ARGUMENT, "page_size"),
        (pb.ListBackendsRequest(page_token="x"), grpc.StatusCode.INVALID_ARGUMENT, "page_token"),
        (pb.ListBackendsRequest(frontend="nope"), grpc.StatusCode.NOT_FOUND, "no such frontend"),
        (pb.ListBackendsRequest(state=["sleepy"]), grpc.StatusCode.INVALID_ARGUMENT, "unknown 'sleepy'"),
    ):
        with pytest.raises(grpc.RpcError) as e:
            s.ListBackends(bad, timeout=10)
        assert e.value.code() is code and said in (e.value.details() or "")


def test_backends_and_healthchecks(demo: Demo) -> None:
    names = [b.name for b in demo.stub.ListBackends(pb.ListBackendsRequest(), timeout=10).backends]
    assert names == ["web0", "web1", "web2", "spare0"]
    b = demo.stub.GetBackend(pb.GetBackendRequest(name="web0"), timeout=10)
    assert (b.address, b.healthcheck, b.state, b.enabled) == ("127.0.1.1", "http", "up", True)
    assert b.last_probe.code == "L7OK" and b.transitions[0].to == "up"
    assert list(b.frontends) == ["web", "web-any"]
    assert code_of(demo.stub.GetBackend, pb.GetBackendRequest(name="web9")) is grpc.StatusCode.NOT_FOUND
    hcs = demo.stub.ListHealthChecks(pb.ListHealthChecksRequest(), timeout=10).healthchecks
    assert [h.name for h in hcs] == ["http", "tcp"]
    http = demo.stub.GetHealthCheck(pb.GetHealthCheckRequest(name="http"), timeout=10)
    assert (http.type, http.port, http.rise, http.fall, http.params["path"]) == ("http", 8080, 2, 3, "/healthz")
    assert code_of(demo.stub.GetHealthCheck, pb.GetHealthCheckRequest(name="x")) is grpc.StatusCode.NOT_FOUND


def test_operator_actions_and_their_errors(demo: Demo) -> None:
    s = demo.stub
    assert s.PauseBackend(pb.BackendRequest(name="spare0"), timeout=10).state == "paused"
    assert s.ResumeBackend(pb.BackendRequest(name="spare0"), timeout=10).state == "unknown"
    assert s.DisableBackend(pb.BackendRequest(name="spare0"), timeout=10).state == "disabled"
    assert code_of(s.PauseBackend, pb.BackendRequest(name="spare0")) is grpc.StatusCode.FAILED_PRECONDITION
    assert s.EnableBackend(pb.BackendRequest(name="spare0"), timeout=10).state == "unknown"
    assert code_of(s.DisableBackend, pb.BackendRequest(name="ghost")) is grpc.StatusCode.NOT_FOUND


def test_set_weight_goes_to_vpp(demo: Demo) -> None:
    s = demo.stub
    req = pb.SetWeightRequest(frontend="web", pool="primary", backend="web1", weight=30, flush=True)
    web = s.SetFrontendPoolBackendWeight(req, timeout=10)
    assert {b.name: b.effective_weight for b in web.pools[0].backends}["web1"] == 30
    state = s.GetVPPLBState(pb.GetVPPLBStateRequest(), timeout=10)
    vip = next(v for v in state.vips if v.frontend == "web")
    assert {a.address: a.weight for a in vip.ases}["127.0.1.2"] == 30
    assert sum(a.buckets for a in vip.ases) == 1024
    bad = pb.SetWeightRequest(frontend="web", pool="primary", backend="web1", weight=101)
    assert code_of(s.SetFrontendPoolBackendWeight, bad) is grpc.StatusCode.INVALID_ARGUMENT
    missing = pb.SetWeightRequest(frontend="web", pool="nope", backend="web1", weight=1)
    assert code_of(s.SetFrontendPoolBackendWeight, missing) is grpc.StatusCode.NOT_FOUND
    s.SetFrontendPoolBackendWeight(
        pb.SetWeightRequest(frontend="web", pool="primary", backend="web1", weight=100), timeout=10
    )


def test_vpp_calls(demo: Demo) -> None:
    s = demo.stub
    info = s.GetVPPInfo(pb.GetVPPInfoRequest(), timeout=10)
    assert info.version.startswith("26.10") and info.weights and info.pid > 0 and info.boottime_ns > 0
    state = s.GetVPPLBState(pb.GetVPPLBStateRequest(), timeout=10)
    assert state.conf.ip4_src_address == "192.0.2.254"
    assert {v.frontend for v in state.vips} == {"web", "web-any"}
    sync = s.SyncVPPLBState(pb.SyncVPPLBStateRequest(), timeout=10)
    assert sync.changes == 0 and not sync.errors
    assert code_of(s.SyncVPPLBState, pb.SyncVPPLBStateRequest(frontend="nope")) is grpc.StatusCode.NOT_FOUND
    counters = s.GetVPPLBCounters(pb.GetVPPLBCountersRequest(), timeout=10)
    assert {c.frontend for c in counters.vips} <= {"web", "web-any"}


def test_config_check_and_reload(demo: Demo) -> None:
    s = demo.stub
    assert s.CheckConfig(pb.CheckConfigRequest(), timeout=10).ok
    cfg = demo.tmp / "maglev.yaml"
    good = cfg.read_text()
    try:
        cfg.write_text("maglev: [\n")
        r = s.CheckConfig(pb.CheckConfigRequest(), timeout=10)
        assert not r.ok and "YAML syntax error" in r.parse_error
        r2 = s.ReloadConfig(pb.ReloadConfigRequest(), timeout=10)
        assert not r2.ok and r2.parse_error and r2.generation == 1
        cfg.write_text(good.replace("web0: {weight: 100}", "web9: {weight: 100}"))
        r3 = s.ReloadConfig(pb.ReloadConfigRequest(), timeout=10)
        assert not r3.ok and "no such backend" in r3.semantic_error
    finally:
        cfg.write_text(good)
    r4 = s.ReloadConfig(pb.ReloadConfigRequest(), timeout=10)
    assert r4.ok and r4.generation == 2


def test_reflection_and_health(demo: Demo) -> None:
    refl = reflection_pb2_grpc.ServerReflectionStub(demo.channel)
    responses = refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
    services = {s.name for r in responses for s in r.list_services_response.service}
    assert "maglev.v1.Maglev" in services and "grpc.health.v1.Health" in services
    h = health_pb2_grpc.HealthStub(demo.channel)
    assert (
        h.Check(health_pb2.HealthCheckRequest(service="maglev.v1.Maglev"), timeout=10).status
        == health_pb2.HealthCheckResponse.SERVING
    )


def test_watch_events(demo: Demo) -> None:
    req = pb.WatchRequest(backend=True, frontend=True, log=True, log_level="debug")
    stream = demo.stub.WatchEvents(req, timeout=30)
    got: list[pb.Event] = []
    done = threading.Event()

    def read() -> None:
        try:
            for e in stream:
                got.append(e)
                kinds = {x.WhichOneof("kind") for x in got}
                transitions = [x for x in got if x.WhichOneof("kind") == "backend" and x.backend.backend == "web2"]
                debug = [x for x in got if x.WhichOneof("kind") == "log" and x.log.level == "debug"]
                if {"frontend", "backend", "log"} <= kinds and transitions and debug:
                    done.set()
                    return
        except grpc.RpcError:
            pass
        finally:
            done.set()

    t = threading.Thread(target=read, daemon=True)
    t.start()
    try:
        demo.flip("web2", "stop")  # a real backend goes away
        assert done.wait(20)
    finally:
        stream.cancel()
        demo.flip("web2", "up")
    replay = [e.frontend for e in got if e.WhichOneof("kind") == "frontend"][:2]
    assert [(f.frontend, f.__getattribute__("from") == f.to) for f in replay] == [("web", True), ("web-any", True)]
    web2 = next(e.backend for e in got if e.WhichOneof("kind") == "backend" and e.backend.backend == "web2")
    assert web2.transition.to == "down" and web2.transition.code == "L4CON"
    assert any(e.log.level == "debug" for e in got if e.WhichOneof("kind") == "log"), (
        "debug logs while the daemon logs info"
    )


def test_slow_subscriber_is_cut_off() -> None:
    loop = asyncio.new_event_loop()
    try:
        sub = Subscriber(pb.WatchRequest(backend=True), loop)
        for i in range(QUEUE_LIMIT + 5):
            sub.offer(pb.Event(id=i))
        assert sub.overflowed and sub.queue.qsize() == 1 and sub.queue.get_nowait() is STOP
    finally:
        loop.close()


def vppless_daemon(tmp_path: Path) -> tuple[Daemon, str]:
    """maglevd on MINIMAL with VPP off; the daemon and its gRPC address."""
    cfg = tmp_path / "maglev.yaml"
    cfg.write_text(MINIMAL)
    d = Daemon(["--config", str(cfg), "--metrics-addr", "", "--grpc-addr", "127.0.0.1:0", "--vpp-api-addr", ""])
    try:
        return d, d.event("listening", service="grpc")["address"]
    except BaseException:
        d.kill()
        raise


def test_vpp_disabled_is_unavailable(tmp_path: Path) -> None:
    d, addr = vppless_daemon(tmp_path)
    try:
        with grpc.insecure_channel(addr) as ch:
            stub = pb_grpc.MaglevStub(ch)
            assert code_of(stub.GetVPPInfo, pb.GetVPPInfoRequest()) is grpc.StatusCode.UNAVAILABLE
            assert code_of(stub.SyncVPPLBState, pb.SyncVPPLBStateRequest()) is grpc.StatusCode.UNAVAILABLE
            assert len(stub.ListBackends(pb.ListBackendsRequest(), timeout=10).backends) == 2
    finally:
        assert d.stop() == 0


def test_shutdown_ends_open_streams(tmp_path: Path) -> None:
    d, addr = vppless_daemon(tmp_path)
    try:
        with grpc.insecure_channel(addr) as ch:
            stream = pb_grpc.MaglevStub(ch).WatchEvents(pb.WatchRequest(frontend=True), timeout=60)
            first = next(stream)  # the replayed frontend state: the stream is live
            assert first.frontend.frontend == "web"
            ended: list[str] = []

            def drain() -> None:
                try:
                    for _ in stream:
                        pass
                    ended.append("OK")
                except grpc.RpcError as e:
                    ended.append(e.code().name)

            t = threading.Thread(target=drain, daemon=True)
            t.start()
            assert d.stop() == 0, "maglevd exits cleanly with a stream open"
            t.join(10)
            assert ended and ended[0] != "DEADLINE_EXCEEDED", ended
    finally:
        d.kill()


# --- maglevc ---------------------------------------------------------------------------------


def maglevc(demo: Demo, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = ["--server", demo.address] if env is None else []
    return subprocess.run(
        [sys.executable, "-m", "maglev.maglevc", *base, *args],
        capture_output=True,
        text=True,
        env=env or source_env(),
        timeout=60,
    )


def test_maglevc_one_shot(demo: Demo) -> None:
    r = maglevc(demo, "--color=false", "sh", "ba")  # prefix matching: show backends
    assert r.returncode == 0, r.stderr
    assert "\033[" not in r.stdout
    rows = [line.split()[0] for line in r.stdout.splitlines()[1:]]
    assert rows == ["web0", "web1", "web2", "spare0"]
    assert "\033[" not in maglevc(demo, "show", "backends").stdout, "no colour into a pipe by default"
    r = maglevc(demo, "-color=true", "show", "backends")  # asked for; columns still line up
    assert "\033[32mup" in r.stdout, r.stdout
    coloured = maglevc(
        demo, "show", "backends", env={**source_env(), "MAGLEV_SERVER": demo.address, "MAGLEV_COLOR": "1"}
    )
    assert "\033[32mup" in coloured.stdout
    plain = [re.sub(r"\033\[[0-9;]*m", "", line) for line in r.stdout.splitlines()]
    starts = [plain[0].index(h) for h in ("state", "address", "check", "last", "since")]
    for row in plain[1:]:
        assert all(row[i - 1] == " " and row[i] != " " for i in starts), (row, starts)
    r = maglevc(demo, "--color=false", "show", "frontend", "web")
    assert r.returncode == 0 and "pool   primary (active)" in r.stdout and "127.0.1.3" in r.stdout, r.stdout
    r = maglevc(demo, "--color=false", "show", "backend", "web0")
    checks = re.search(r"checks\s+(\d+) \(0 failed\), 0 times down, 0s down in all", r.stdout)
    assert r.returncode == 0 and checks is not None and int(checks.group(1)) > 0, r.stdout
    r = maglevc(demo, "--color=true", "show", "backend", "nope")
    assert r.returncode == 1
    assert r.stderr.strip() == "\033[31mno such backend 'nope'\033[0m", "the server's message, red, no gRPC boilerplate"
    r = maglevc(demo, "--color=false", "show", "backend", "nope")
    assert r.stderr.strip() == "no such backend 'nope'"
    r = maglevc(demo, "--color=false", "show", "bogus")
    assert r.returncode == 1 and "unknown 'bogus' after show" in r.stderr
    r = maglevc(demo, "--color=false", "set", "backend", "spare0", "disable")
    assert (r.returncode, r.stdout.strip()) == (0, "spare0: disabled")
    r = maglevc(demo, "--color=false", "set", "backend", "spare0", "pause")
    assert r.returncode == 1 and "cannot pause backend spare0" in r.stderr
    assert maglevc(demo, "set", "backend", "spare0", "enable").returncode == 0
    r = maglevc(demo, "--color=false", "config", "check")
    assert (r.returncode, r.stdout.strip()) == (0, "configuration ok")
    r = maglevc(demo, "--color=false", "show", "vpp", "info")
    assert r.returncode == 0 and "api-mode" in r.stdout and "weights" in r.stdout
    r = maglevc(demo, "--color=false", "watch", "events", "num", "2", "frontend")
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [e["frontend"]["frontend"] for e in lines] == ["web", "web-any"]
    r = maglevc(demo, "--color=false", "watch", "events", "num", "2", "log")  # log adds to the others
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [e["frontend"]["frontend"] for e in lines] == ["web", "web-any"], r.stdout
    r = maglevc(demo, "--color=false", "show", "version", env={**source_env(), "MAGLEV_SERVER": demo.address})
    assert r.returncode == 0 and "maglevd" in r.stdout, r.stderr


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_maglevc_shell_in_a_terminal(demo: Demo, tmp_path: Path) -> None:
    session = f"maglevc{os.getpid()}"

    def screen() -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout

    def until(pred: Any, what: str) -> str:
        deadline = time.monotonic() + 15
        text = ""
        while time.monotonic() < deadline:
            text = screen()
            if pred(text):
                return text
            threading.Event().wait(0.05)  # poll the terminal's screen, bounded
        raise AssertionError(f"{what} not seen:\n{text}")

    pythonpath = source_env()["PYTHONPATH"]
    status, left = tmp_path / "status", f"{session}-left"  # left: a tmux wait-for channel
    command = (
        f"env PYTHONPATH={pythonpath} {sys.executable} -m maglev.maglevc --server {demo.address};"
        f" echo $? > {status}; tmux wait-for -S {left}"
    )
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "150", "-y", "40", command], check=True)
    keys = lambda *k: subprocess.run(["tmux", "send-keys", "-t", session, *k], check=True)  # noqa: E731
    try:
        until(lambda t: t.rstrip().endswith("maglev>"), "the prompt")
        keys("sh", "Tab")
        until(lambda t: t.rstrip().endswith("maglev> show"), "completion of 'sh'")
        keys("backend w", "Tab")
        until(lambda t: "web0" in t and "web1" in t and "web2" in t, "live backend names")
        keys("C-u", "show ", "?")
        text = until(lambda t: "healthchecks" in t and "version" in t, "? help")
        assert text.rstrip().endswith("maglev> show"), "the ? is not kept in the line"
        assert "all health checks" in text, "each word with what it means"
        keys("C-u", "set frontend web pool primary backend web1 weight ", "?")
        text = until(lambda t: "<weight 0-100>" in t, "? in an argument position")
        assert "the weight VPP is given" in text and text.rstrip().endswith("weight")
        keys("C-u", "show version ", "?")
        until(lambda t: "<enter>" in t and "print maglevc's and maglevd's versions" in t, "what Enter will do")
        keys("C-u", "watch events frontend", "Enter")
        until(lambda t: '"frontend":"web-any"' in t, "events")
        keys("x")  # any key ends the stream
        until(lambda t: t.rstrip().endswith("maglev>"), "the prompt after watch")
        keys("watch events", "Enter")
        until(lambda t: t.count('"frontend":"web"') >= 2, "events again")
        keys("C-c")
        until(lambda t: t.rstrip().endswith("maglev>"), "the prompt after Ctrl-C")
        waiter = subprocess.Popen(["tmux", "wait-for", left])  # listening before the shell can leave
        keys("quit", "Enter")
        try:
            waiter.wait(10)
        except subprocess.TimeoutExpired:
            waiter.kill()
            raise AssertionError(f"the shell did not leave:\n{screen()}") from None
        assert status.read_text().strip() == "0"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_a_moved_backend_is_not_trusted_until_probed_and_its_old_address_drains(demo: Demo) -> None:
    """A reload moving web1 to an address where nothing listens: weight 0 there (probe before
    trust), its old address at weight 0 without flush while it drains."""
    s = demo.stub
    cfg = demo.tmp / "maglev.yaml"
    good = cfg.read_text()
    try:
        cfg.write_text(good.replace("web1: {address: 127.0.1.2,", "web1: {address: 127.0.1.99,"))
        r = s.ReloadConfig(pb.ReloadConfigRequest(), timeout=30)
        assert r.ok, r
        state = s.GetVPPLBState(pb.GetVPPLBStateRequest(), timeout=10)
        web = next(v for v in state.vips if v.frontend == "web")
        weights = {a.address: a.weight for a in web.ases}
        assert weights["127.0.1.99"] == 0, "unknown at its new address: no traffic until its checks pass"
        assert weights["127.0.1.2"] == 0, "the old address drains"
        fe = s.GetFrontend(pb.GetFrontendRequest(name="web"), timeout=10)
        assert [(d.address, d.backend) for d in fe.draining] == [("127.0.1.2", "web1")]
        assert 0 < fe.draining[0].seconds_left <= 40
        assert s.GetBackend(pb.GetBackendRequest(name="web1"), timeout=10).state in ("unknown", "down")
    finally:
        cfg.write_text(good)
        assert s.ReloadConfig(pb.ReloadConfigRequest(), timeout=30).ok
    fe = s.GetFrontend(pb.GetFrontendRequest(name="web"), timeout=10)
    assert [d.address for d in fe.draining] == ["127.0.1.99"], "moved back: the old drain ends, the new one starts"


# --- previews ---------------------------------------------------------------------------------


def after_the_next_record(demo: Demo) -> None:
    """Once the daemon logs something (something happened), or a second passes with nothing."""
    try:
        demo.daemon.wait_for(lambda r: True, timeout=1.0)
    except AssertionError:
        pass  # nothing logged for a second: look again


def settled(demo: Demo) -> pb.FrontendInfo:
    """web once every primary backend is up at its weight (an earlier test moved one: until its
    checks pass at the new address, it rejoins, and the table changes under a preview)."""
    deadline = time.monotonic() + 30
    while True:
        web: pb.FrontendInfo = demo.stub.GetFrontend(pb.GetFrontendRequest(name="web"), timeout=10)
        members = web.pools[0].backends
        if all(b.state == "up" and b.effective_weight == b.weight for b in members) and web.table.known:
            return web
        assert time.monotonic() < deadline, f"web did not settle: {web}"
        after_the_next_record(demo)


def test_preview_then_the_change_itself(demo: Demo) -> None:
    s = demo.stub
    req = pb.SetWeightRequest(frontend="web", pool="primary", backend="web1", weight=30)
    for _ in range(5):
        web = settled(demo)
        assert web.table.known and len(web.table.digest) == 16 and web.table.length == 1024
        p = s.PreviewChange(pb.PreviewRequest(set_weight=req), timeout=10)
        assert p.connected
        if [v.frontend for v in p.vips] == ["web"] and p.vips[0].digest_before == web.table.digest:
            break
        # A sync landed between the two reads (VPP's table moved under them), or web-any's was
        # about to (an earlier test's drain ending): a preview lists every VIP whose table it
        # would move. Read both again after the next thing the daemon logs.
        after_the_next_record(demo)
    assert [v.frontend for v in p.vips] == ["web"]
    v = p.vips[0]
    assert v.digest_before == web.table.digest and v.digest_after != v.digest_before
    assert v.moved >= v.minimum > 0 and v.moved == sum(m.buckets for m in v.moves)
    assert {m.from_as for m in v.moves} >= {"127.0.1.2"} or {m.to_as for m in v.moves} >= {"127.0.1.2"}
    assert s.GetFrontend(pb.GetFrontendRequest(name="web"), timeout=10).table.digest == web.table.digest  # not applied
    try:
        after = s.SetFrontendPoolBackendWeight(req, timeout=10)
        assert after.table.digest == v.digest_after  # the preview is what VPP then holds
        held = {a.address: a.buckets for a in after.table.shares if a.buckets}
        assert held == {a.address: a.buckets for a in v.after if a.buckets}
    finally:
        s.SetFrontendPoolBackendWeight(
            pb.SetWeightRequest(frontend="web", pool="primary", backend="web1", weight=100), timeout=10
        )
    none = s.PreviewChange(pb.PreviewRequest(reload=pb.ReloadPreview()), timeout=10)
    assert list(none.vips) == [], "the file on disk is the running config"
    pause = s.PreviewChange(pb.PreviewRequest(backend=pb.BackendChange(name="web2", action="pause")), timeout=10)
    assert list(pause.vips[0].drained) == ["127.0.1.3"]
    longer = (
        (demo.tmp / "maglev.yaml")
        .read_text()
        .replace(
            "protocol: tcp\n      port: 8080\n", "protocol: tcp\n      port: 8080\n      new-flows-table-length: 2048\n"
        )
    )
    r = s.PreviewChange(pb.PreviewRequest(reload=pb.ReloadPreview(config_yaml=longer)), timeout=10)
    assert "new-flows-table-length 1024 -> 2048" in r.vips[0].recreated
    out = maglevc(demo, "--color=false", "preview", "backend", "web2", "pause")
    assert out.returncode == 0 and "127.0.1.3: weight 0, established flows stay" in out.stdout, out.stderr
    assert "change owner" in out.stdout


@pytest.mark.parametrize(
    ("request_", "code", "words"),
    [
        (pb.PreviewRequest(), grpc.StatusCode.INVALID_ARGUMENT, "say what to preview"),
        (pb.PreviewRequest(backend=pb.BackendChange(name="nope", action="pause")), grpc.StatusCode.NOT_FOUND, "nope"),
        (
            pb.PreviewRequest(backend=pb.BackendChange(name="web0", action="x")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "pause",
        ),
        (
            pb.PreviewRequest(
                set_weight=pb.SetWeightRequest(frontend="web", pool="primary", backend="web1", weight=101)
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "0..100",
        ),
        (
            pb.PreviewRequest(set_weight=pb.SetWeightRequest(frontend="web", pool="nope", backend="web1", weight=1)),
            grpc.StatusCode.NOT_FOUND,
            "no pool",
        ),
        (
            pb.PreviewRequest(reload=pb.ReloadPreview(config_yaml="maglev: [\n")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "YAML",
        ),
    ],
)
def test_preview_refuses_bad_requests(demo: Demo, request_: Any, code: grpc.StatusCode, words: str) -> None:
    with pytest.raises(grpc.RpcError) as info:
        demo.stub.PreviewChange(request_, timeout=10)
    assert info.value.code() is code and words in (info.value.details() or "")
    assert demo.stub.GetFrontend(pb.GetFrontendRequest(name="web"), timeout=10).state == "up"


def test_check_against_running(demo: Demo, tmp_path: Path) -> None:
    text = (demo.tmp / "maglev.yaml").read_text()
    changed = tmp_path / "new.yaml"
    changed.write_text(text.replace("web2: {weight: 50}", "web2: {weight: 100}"))
    port = demo.address.rpartition(":")[2]
    check = [sys.executable, "-m", "maglev", "--check", str(changed), "--against-running", "--grpc-addr"]
    r = subprocess.run(
        [*check, f"127.0.0.1:{port}"],
        capture_output=True, text=True, env=source_env(), timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "against the running maglevd" in r.stdout and "VIP 127.0.2.1/32 tcp:8080" in r.stdout
    assert "127.0.1.3" in r.stdout and "change owner" in r.stdout
    closed = subprocess.run(
        [*check, "127.0.0.1:1"],
        capture_output=True, text=True, env=source_env(), timeout=60,
    )  # fmt: skip
    assert closed.returncode == 3 and "cannot preview against the running maglevd" in closed.stderr


def test_the_demo_log_has_no_access_lines(demo: Demo) -> None:
    """The health checks hit the demo backends several times a second: their access lines
    were nearly all of the demo's log. Off unless --access-log."""
    access = re.compile(r'"GET /healthz HTTP/1\.[01]" \d{3}')

    def is_access(r: dict[str, Any]) -> bool:
        return any(access.search(str(v)) for v in r.values())

    assert is_access({"msg": '"127.0.0.1" - - [01/Dec/2026] "GET /healthz HTTP/1.1" 200 8'})  # what they looked like
    assert not [r for r in demo.daemon.seen if is_access(r)]
    with pytest.raises(AssertionError, match="no matching log record"):
        demo.daemon.wait_for(is_access, timeout=4.0)  # the demo probes every 1-2 s
