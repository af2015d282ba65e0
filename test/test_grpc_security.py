"""The secure control plane against real daemons: TLS and mTLS with certificates made
here, tokens and roles against each class of RPC, rotation on SIGHUP, loopback versus a
real non-loopback peer (a network namespace), the audit trail, maglevc and
maglevd-frontend as clients, and the hostile inputs that used to break the daemon."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from maglev.access import hash_token
from maglev.api.gen.maglev.v1 import maglev_pb2 as pb
from maglev.api.gen.maglev.v1 import maglev_pb2_grpc as pb_grpc

from .certs import Authority, Pair
from .helpers import MINIMAL, Daemon, fetch, metric, source_env
from .netns import namespace, needs_netns, veth_to

pytestmark = pytest.mark.slow

ADMIN_TOKEN, READ_TOKEN, FRONTEND_TOKEN = "tok-alice-0123456789", "tok-grafana-0123456789", "tok-frontend-0123"


@dataclass
class Pki:
    dir: Path
    ca: Authority
    server: Pair
    rotated: Pair
    admin: Pair  # listed: admin
    reader: Pair  # listed: read
    stranger: Pair  # our CA, not listed
    foreign: Pair  # another CA
    tokens: Path
    admin_token: Path
    read_token: Path


def tokens_yaml(pki_admin: str, pki_reader: str, extra: str = "") -> str:
    return textwrap.dedent(f"""\
        tokens:
          - {{name: alice, role: admin, sha256: "{hash_token(ADMIN_TOKEN)}"}}
          - {{name: grafana, role: read, sha256: "{hash_token(READ_TOKEN)}"}}
          - {{name: frontend, role: admin, sha256: "{hash_token(FRONTEND_TOKEN)}"}}
        {extra}certificates:
          - {{subject: "{pki_admin}", role: admin}}
          - {{subject: "{pki_reader}", role: read}}
        """)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca = Authority(d)
    server = ca.issue("server", "maglevd", sans=("localhost", "127.0.0.1"))
    rotated = ca.issue("rotated", "maglevd-rotated", sans=("localhost", "127.0.0.1"))
    admin = ca.issue("admin", "ops-admin", org="ops", client=True)
    reader = ca.issue("reader", "dashboard", client=True)
    stranger = ca.issue("stranger", "stranger", client=True)
    foreign = Authority(d / "other", "other CA").issue("foreign", "ops-admin", org="ops", client=True)
    tokens = d / "tokens.yaml"
    tokens.write_text(tokens_yaml(admin.subject, reader.subject))
    admin_token, read_token = d / "admin.token", d / "read.token"
    admin_token.write_text(ADMIN_TOKEN + "\n")
    read_token.write_text(READ_TOKEN + "\n")
    return Pki(d, ca, server, rotated, admin, reader, stranger, foreign, tokens, admin_token, read_token)


def start(tmp: Path, *flags: str, grpc_addr: str = "127.0.0.1:0", env: dict[str, str] | None = None) -> Daemon:
    cfg = tmp / "maglev.yaml"
    if not cfg.exists():
        cfg.write_text(MINIMAL)
    args = ["--config", str(cfg), "--metrics-addr", "127.0.0.1:0", "--vpp-api-addr", "", "--grpc-addr", grpc_addr]
    d = Daemon([*args, *flags], env=env)
    try:
        d.event("listening", service="grpc")
    except BaseException:
        d.kill()
        raise
    return d


def logged(d: Daemon, name: str, **fields: Any) -> dict[str, Any]:
    """A record already seen, or the next one to come."""
    for r in d.seen:
        if r.get("event") == name and all(r.get(k) == v for k, v in fields.items()):
            return r
    return d.event(name, **fields)


def grpc_port(d: Daemon) -> int:
    return int(logged(d, "listening", service="grpc")["address"].rpartition(":")[2])


def channel(port: int, pki: Pki, client: Pair | None = None, ca: Path | None = None) -> grpc.Channel:
    creds = grpc.ssl_channel_credentials(
        (ca or pki.ca.path).read_bytes(),
        client.key.read_bytes() if client else None,
        client.cert.read_bytes() if client else None,
    )
    return grpc.secure_channel(f"localhost:{port}", creds)


def outcome(call: Callable[[], Any]) -> str:
    try:
        call()
    except grpc.RpcError as e:
        return e.code().name  # type: ignore[no-any-return]
    return "OK"


def classes(ch: grpc.Channel, token: str | None) -> dict[str, str]:
    """Each class of RPC's outcome for one caller."""
    md = (("authorization", f"Bearer {token}"),) if token else ()
    stub = pb_grpc.MaglevStub(ch)

    def stream() -> None:
        next(iter(stub.WatchEvents(pb.WatchRequest(frontend=True), timeout=10, metadata=md)))

    def change() -> None:
        stub.PauseBackend(pb.BackendRequest(name="web1"), timeout=10, metadata=md)
        stub.ResumeBackend(pb.BackendRequest(name="web1"), timeout=10, metadata=md)

    def reflect() -> None:
        req = reflection_pb2.ServerReflectionRequest(list_services="")
        next(iter(reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(iter([req]), metadata=md)))

    return {
        "read": outcome(lambda: stub.ListBackends(pb.ListBackendsRequest(), timeout=10, metadata=md)),
        "stream": outcome(stream),
        "change": outcome(change),
        "reload": outcome(lambda: stub.ReloadConfig(pb.ReloadConfigRequest(), timeout=30, metadata=md)),
        "health": outcome(
            lambda: health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=10, metadata=md)
        ),
        "reflection": outcome(reflect),
    }


ALL_OK = dict.fromkeys(("read", "stream", "change", "reload", "health", "reflection"), "OK")
UNAUTH = {**dict.fromkeys(ALL_OK, "UNAUTHENTICATED"), "health": "OK"}
READER = {**ALL_OK, "change": "PERMISSION_DENIED", "reload": "PERMISSION_DENIED"}


def server_cn(port: int, pki: Pki) -> str:
    """The certificate a new TLS handshake gets."""
    ctx = ssl.create_default_context(cafile=str(pki.ca.path))
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            cert: Any = tls.getpeercert()
    names = {key: value for rdn in cert["subject"] for key, value in rdn}
    return str(names["commonName"])


@pytest.fixture(scope="module")
def tls_daemon(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Daemon, Path]]:
    """TLS (no client certificates) and tokens; certificate files of its own, to rotate."""
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = tmp / "server.pem", tmp / "server.key"
    cert.write_bytes(pki.server.cert.read_bytes())
    key.write_bytes(pki.server.key.read_bytes())
    tokens = tmp / "tokens.yaml"
    tokens.write_text(pki.tokens.read_text())
    d = start(tmp, "--grpc-tls-cert", str(cert), "--grpc-tls-key", str(key), "--grpc-tokens", str(tokens))
    yield d, tmp
    d.stop()
    d.kill()


def test_tokens_and_roles_over_tls(tls_daemon: tuple[Daemon, Path], pki: Pki) -> None:
    d, _ = tls_daemon
    port = grpc_port(d)
    with channel(port, pki) as ch:
        assert classes(ch, None) == UNAUTH
        assert classes(ch, "not-a-token") == UNAUTH
        assert classes(ch, READ_TOKEN) == READER
        assert classes(ch, ADMIN_TOKEN) == ALL_OK
        with pytest.raises(grpc.RpcError) as e:
            pb_grpc.MaglevStub(ch).PauseBackend(
                pb.BackendRequest(name="web1"), timeout=10, metadata=(("authorization", f"Bearer {READ_TOKEN}"),)
            )
        assert e.value.details() == "token:grafana has role read; PauseBackend needs admin"
        v = pb_grpc.MaglevStub(ch).GetVersion(
            pb.GetVersionRequest(), timeout=10, metadata=(("authorization", f"Bearer {READ_TOKEN}"),)
        )
        assert v.api_security.startswith("TLS; tokens file") and list(v.warnings) == []
    with grpc.insecure_channel(f"127.0.0.1:{port}") as plain:
        assert outcome(lambda: pb_grpc.MaglevStub(plain).GetVersion(pb.GetVersionRequest(), timeout=5)) == "UNAVAILABLE"
    # the audit trail: accepted and refused changes, who, from where
    ok = logged(d, "audit", action="PauseBackend", who="token:alice", result="ok")
    assert ok["address"].startswith("127.0.0.1:") and ok["request"] == {"name": "web1"}
    logged(d, "audit", action="PauseBackend", who="token:grafana", result="permission_denied")
    logged(d, "audit", action="ReloadConfig", who="token:alice", result="ok")
    text = fetch(f"http://{logged(d, 'listening', service='metrics-http')['address']}/metrics")
    assert (metric(text, 'maglev_audit_total{action="PauseBackend",result="ok"}') or 0) >= 1
    assert (metric(text, 'maglev_audit_total{action="PauseBackend",result="permission_denied"}') or 0) >= 2
    assert metric(text, 'maglev_audit_total{action="ListBackends",result="ok"}') is None, "reads are not audited"


def test_rotation_on_sighup(tls_daemon: tuple[Daemon, Path], pki: Pki) -> None:
    d, tmp = tls_daemon
    port = grpc_port(d)
    assert server_cn(port, pki) == "maglevd"
    with channel(port, pki) as old:  # a connection made before the rotation keeps working
        assert classes(old, ADMIN_TOKEN)["read"] == "OK"
        (tmp / "server.pem").write_bytes(pki.rotated.cert.read_bytes())
        (tmp / "server.key").write_bytes(pki.rotated.key.read_bytes())
        tokens = tmp / "tokens.yaml"
        tokens.write_text(
            tokens_yaml(pki.admin.subject, pki.reader.subject).replace(
                f'  - {{name: grafana, role: read, sha256: "{hash_token(READ_TOKEN)}"}}\n', ""
            )
        )
        d.signal(signal.SIGHUP)
        d.event("grpc-tls-reloaded", subject="CN=maglevd-rotated")
        logged(d, "grpc-tokens-reloaded", tokens=2)
        assert server_cn(port, pki) == "maglevd-rotated"
        assert classes(old, ADMIN_TOKEN)["read"] == "OK"
    with channel(port, pki) as ch:
        assert classes(ch, READ_TOKEN)["read"] == "UNAUTHENTICATED", "a token taken out of the file stops working"
        # broken files on the next reload: refused, and what runs stays
        (tmp / "server.key").write_bytes(pki.admin.key.read_bytes())  # not the certificate's key
        tokens.write_text("tokens: [{name: x, role: root}]\n")
        d.signal(signal.SIGHUP)
        rejected = d.event("grpc-tokens-reload-rejected")
        assert any("role" in e for e in rejected["errors"])
        assert "does not match the certificate" in logged(d, "grpc-tls-reload-rejected")["error"]
        assert server_cn(port, pki) == "maglevd-rotated"
        assert classes(ch, ADMIN_TOKEN)["change"] == "OK"


def test_mutual_tls_subjects_map_to_roles(pki: Pki, tmp_path: Path) -> None:
    d = start(
        tmp_path, "--grpc-tls-cert", str(pki.server.cert), "--grpc-tls-key", str(pki.server.key),
        "--grpc-tls-client-ca", str(pki.ca.path), "--grpc-tokens", str(pki.tokens),
    )  # fmt: skip
    try:
        port = grpc_port(d)
        with channel(port, pki, pki.admin) as ch:
            assert classes(ch, None) == ALL_OK
        with channel(port, pki, pki.reader) as ch:
            assert classes(ch, None) == READER
            assert classes(ch, ADMIN_TOKEN)["change"] == "OK", "a token wins over the certificate"
        with channel(port, pki, pki.stranger) as ch:
            with pytest.raises(grpc.RpcError) as e:
                pb_grpc.MaglevStub(ch).ListBackends(pb.ListBackendsRequest(), timeout=10)
            assert e.value.code() is grpc.StatusCode.UNAUTHENTICATED
            assert e.value.details() == "certificate subject 'CN=stranger' is not in maglevd's tokens file"
        for client in (None, pki.foreign):  # no certificate, or one from another CA: no handshake
            with channel(port, pki, client) as ch:
                assert classes(ch, ADMIN_TOKEN)["read"] == "UNAVAILABLE"
        logged(d, "audit", action="PauseBackend", who="cert:O=ops,CN=ops-admin", result="ok")
        # maglevc with a client certificate, and with the read token: one line, no gRPC boilerplate
        base = ["--server", f"localhost:{port}", "--color=false", "--tls-ca", str(pki.ca.path)]
        cert = ["--tls-cert", str(pki.admin.cert), "--tls-key", str(pki.admin.key)]
        r = maglevc(*base, *cert, "set", "backend", "web1", "pause")
        assert (r.returncode, r.stdout.strip()) == (0, "web1: paused"), r.stderr
        reader = ["--tls-cert", str(pki.reader.cert), "--tls-key", str(pki.reader.key)]
        r = maglevc(*base, *reader, "set", "backend", "web1", "resume")
        assert r.returncode == 1
        assert r.stderr.strip() == "cert:CN=dashboard has role read; ResumeBackend needs admin"
        env = {**source_env(), "MAGLEV_TLS_CERT": str(pki.admin.cert), "MAGLEV_TLS_KEY": str(pki.admin.key)}
        r = maglevc(*base, "set", "backend", "web1", "resume", env=env)
        assert r.returncode == 0 and r.stdout.strip() in ("web1: unknown", "web1: down"), r.stderr
    finally:
        d.stop()
        d.kill()


def maglevc(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "maglev.maglevc", *args], capture_output=True, text=True, env=env or source_env(),
        timeout=60,
    )  # fmt: skip


def test_maglevc_token_file(tls_daemon: tuple[Daemon, Path], pki: Pki, tmp_path: Path) -> None:
    d, _ = tls_daemon
    base = ["--server", f"localhost:{grpc_port(d)}", "--color=false", "--tls-ca", str(pki.ca.path)]
    r = maglevc(*base, "show", "backends")
    assert r.returncode == 1 and r.stderr.strip().startswith("this maglevd needs credentials"), r.stderr
    env = {**source_env(), "MAGLEV_TOKEN_FILE": str(pki.admin_token)}
    r = maglevc(*base, "set", "backend", "web0", "disable", env=env)
    assert (r.returncode, r.stdout.strip()) == (0, "web0: disabled"), r.stderr
    r = maglevc(*base, "--token-file", str(pki.admin_token), "set", "backend", "web0", "enable")
    assert r.returncode == 0, r.stderr
    empty = tmp_path / "empty.token"
    empty.write_text("\n")
    for bad, message in ((empty, "must hold one token"), (tmp_path / "missing", "cannot read")):
        r = maglevc(*base, "--token-file", str(bad), "show", "backends")
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr


@needs_netns
def test_safe_default_loopback_versus_the_network(tmp_path: Path) -> None:
    """No tokens file, no TLS, listening on every address: reads from anywhere, changes only
    from loopback; a real peer in another network namespace is refused, and told why."""
    with namespace() as ns, veth_to(ns, "10.213.7.1", "10.213.7.2", 30):
        d = start(tmp_path, grpc_addr="0.0.0.0:0")
        try:
            port = grpc_port(d)
            warning = logged(d, "grpc-insecure")
            assert "without TLS" in warning["warning"]
            with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
                stub = pb_grpc.MaglevStub(ch)
                assert outcome(lambda: stub.PauseBackend(pb.BackendRequest(name="web1"), timeout=10)) == "OK"
                assert outcome(lambda: stub.ResumeBackend(pb.BackendRequest(name="web1"), timeout=10)) == "OK"
            logged(d, "audit", action="PauseBackend", who="loopback", result="ok")
            client = textwrap.dedent(f"""\
                import json, grpc
                from maglev.api.gen.maglev.v1 import maglev_pb2 as pb, maglev_pb2_grpc as pb_grpc
                out = {{}}
                with grpc.insecure_channel("10.213.7.1:{port}") as ch:
                    stub = pb_grpc.MaglevStub(ch)
                    out["read"] = len(stub.ListBackends(pb.ListBackendsRequest(), timeout=10).backends)
                    try:
                        stub.DisableBackend(pb.BackendRequest(name="web0"), timeout=10)
                        out["change"] = "OK"
                    except grpc.RpcError as e:
                        out["change"] = [e.code().name, e.details()]
                print(json.dumps(out))
                """)
            r = subprocess.run(
                ["ip", "netns", "exec", ns, sys.executable, "-c", client],
                capture_output=True, text=True, env=source_env(), timeout=60,
            )  # fmt: skip
            assert r.returncode == 0, r.stderr
            out = json.loads(r.stdout)
            assert out["read"] == 2
            assert out["change"][0] == "PERMISSION_DENIED" and "--grpc-tokens" in out["change"][1]
            refused = logged(d, "audit", action="DisableBackend", result="permission_denied")
            assert refused["address"].startswith("10.213.7.2:") and refused["who"] == "anonymous"
            with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
                info = pb_grpc.MaglevStub(ch).GetBackend(pb.GetBackendRequest(name="web0"), timeout=10)
            assert info.enabled, "the refused change changed nothing"
            r = maglevc("--server", f"127.0.0.1:{port}", "--color=false", "show", "version")
            assert "warning" in r.stdout and "grpc-insecure" in r.stdout, r.stdout
            assert "changes from loopback only" in r.stdout
        finally:
            d.stop()
            d.kill()


def test_frontend_authenticates_with_its_own_token(pki: Pki, tmp_path: Path) -> None:
    d = start(
        tmp_path, "--grpc-tls-cert", str(pki.server.cert), "--grpc-tls-key", str(pki.server.key),
        "--grpc-tokens", str(pki.tokens),
    )  # fmt: skip
    token = tmp_path / "frontend.token"
    token.write_text(FRONTEND_TOKEN)
    env = {**source_env(), "MAGLEV_FRONTEND_USER": "ops", "MAGLEV_FRONTEND_PASSWORD": "s3cret"}
    server = f"localhost:{grpc_port(d)}"
    fe = Daemon(
        ["--server", server, "--listen", "127.0.0.1:0", "--tls-ca", str(pki.ca.path), "--token-file",
         f"{server}={token}"],
        env=env, command=[sys.executable, "-c", "from maglev.web.frontend import main; main()"],
    )  # fmt: skip
    try:
        web = "http://" + fe.event("listening", service="web-http")["address"]
        fe.wait_for(lambda r: r.get("event") == "web-source" and r.get("what") == "connected")
        code, body = web_post(web, "/admin/api/localhost/backends/web1/pause")
        assert (code, body["state"]) == (200, "paused"), body
        remote = logged(d, "audit", action="PauseBackend", who="token:frontend", result="ok")
        assert remote["on_behalf_of"] == "web:ops"
        own = logged(fe, "audit", action="PauseBackend", who="web:ops", result="ok")
        assert own["request"] == {"name": "web1"}
        weight = "/admin/api/localhost/frontends/web/pools/primary/backends/web0/weight"
        for bad in ("²", "999999999999", "-1 "):
            code, body = web_post(web, weight, {"weight": bad})
            assert code == 400 and "weight must be an integer 0..100" in body["error"], (bad, code, body)
        with channel(grpc_port(d), pki) as ch:
            md = (("authorization", f"Bearer {ADMIN_TOKEN}"),)
            fe_info = pb_grpc.MaglevStub(ch).GetFrontend(pb.GetFrontendRequest(name="web"), timeout=10, metadata=md)
        assert fe_info.pools[0].backends[0].weight == 100, "the refused forms changed nothing"
        code, _ = web_get(web, "/view/", host="evil.example")
        assert code == 403
    finally:
        fe.stop()
        fe.kill()
        d.stop()
        d.kill()


AUTH = "Basic " + base64.b64encode(b"ops:s3cret").decode()


def web_post(web: str, path: str, form: dict[str, str] | None = None, **headers: str) -> tuple[int, Any]:
    data = urllib.parse.urlencode(form or {}).encode()
    all_headers = {"Authorization": AUTH, "Origin": web, **headers}
    req = urllib.request.Request(web + path, data=data, method="POST", headers=all_headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = e.read()
        return e.code, json.loads(body) if e.headers.get("content-type") == "application/json" else body.decode()


def web_get(web: str, path: str, host: str | None = None) -> tuple[int, str]:
    req = urllib.request.Request(web + path, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


# --- hostile input --------------------------------------------------------------------------------


def test_a_second_maglevd_cannot_share_the_grpc_port(tmp_path: Path) -> None:
    first = start(tmp_path)
    try:
        port = grpc_port(first)
        (tmp_path / "second").mkdir()
        (tmp_path / "second" / "maglev.yaml").write_text(MINIMAL)
        second = subprocess.run(
            [sys.executable, "-m", "maglev", "--config", str(tmp_path / "second" / "maglev.yaml"),
             "--metrics-addr", "", "--vpp-api-addr", "", "--grpc-addr", f"127.0.0.1:{port}"],
            capture_output=True, text=True, env=source_env(), timeout=60,
        )  # fmt: skip
        assert second.returncode == 1
        assert f"grpc: cannot listen on 127.0.0.1:{port}: address in use" in second.stderr
        assert "Traceback" not in second.stderr
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            v = pb_grpc.MaglevStub(ch).GetVersion(pb.GetVersionRequest(), timeout=10)
        assert v.config_generation == 1, "the first one still answers, alone"
    finally:
        first.stop()
        first.kill()


def generation(d: Daemon) -> int:
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port(d)}") as ch:
        return int(pb_grpc.MaglevStub(ch).GetVersion(pb.GetVersionRequest(), timeout=10).config_generation)


def test_a_fifo_as_the_config_is_refused_and_never_blocks(tmp_path: Path) -> None:
    d = start(tmp_path)
    try:
        cfg = tmp_path / "maglev.yaml"
        cfg.unlink()
        os.mkfifo(cfg)
        d.signal(signal.SIGHUP)
        rejected = d.event("config-reload-rejected")
        assert rejected["errors"] == [f"<file>: {cfg} is not a regular file (a FIFO)"]
        d.signal(signal.SIGHUP)  # a second reload is not queued behind the first
        d.event("config-reload-rejected")
        assert generation(d) == 1
        cfg.unlink()
        cfg.write_text(MINIMAL)
        d.signal(signal.SIGHUP)
        d.event("config-reload", generation=2)
        cfg.unlink()
        os.mkfifo(cfg)
        d.signal(signal.SIGHUP)
        assert d.stop(timeout=15) == 0, "SIGTERM still stops it"
    finally:
        d.kill()


DEEP = "maglev: " + "[" * 20_000


def test_deeply_nested_yaml_is_a_structural_error(tmp_path: Path) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text(DEEP)
    for args in (["--check", str(deep)], ["--config", str(deep), "--vpp-api-addr", "", "--grpc-addr", ""]):
        r = subprocess.run(
            [sys.executable, "-m", "maglev", *args], capture_output=True, text=True, env=source_env(), timeout=60
        )
        assert r.returncode == 1, (args, r.stderr)
        assert "nested more than 64 levels deep" in r.stderr and "Traceback" not in r.stderr
    d = start(tmp_path)
    try:
        (tmp_path / "maglev.yaml").write_text(DEEP)
        d.signal(signal.SIGHUP)
        rejected = d.event("config-reload-rejected", kind="structural")
        assert any("nested more than 64 levels deep" in e for e in rejected["errors"])
        assert generation(d) == 1
    finally:
        d.stop()
        d.kill()


def test_web_guards_on_maglevd(tmp_path: Path) -> None:
    """DNS rebinding and bad forms against maglevd's own web UI: refused, nothing changed."""
    env = {**source_env(), "MAGLEV_FRONTEND_USER": "ops", "MAGLEV_FRONTEND_PASSWORD": "s3cret"}
    d = start(tmp_path, "--web-allowed-hosts", "router1.example", env=env)
    try:
        web = "http://" + logged(d, "listening", service="web-http")["address"]
        assert web_get(web, "/view/")[0] == 200
        code, text = web_get(web, "/view/", host="evil.example")
        assert code == 403 and "--web-allowed-hosts" in text
        assert web_get(web, "/view/api/state", host="evil.example:8080")[0] == 403
        assert web_get(web, "/view/", host="router1.example")[0] == 200
        assert web_get(web, "/healthz", host="evil.example")[0] == 200
        daemon_name = json.loads(web_get(web, "/view/api/maglevds")[1])[0]["name"]
        pause = f"/admin/api/{daemon_name}/backends/web1/pause"
        assert web_post(web, pause, Host="evil.example", Origin="http://evil.example")[0] == 403
        assert web_post(web, pause, Origin="http://evil.example")[0] == 403
        weight = f"/admin/api/{daemon_name}/frontends/web/pools/primary/backends/web0/weight"
        for bad in ("²", "999999999999"):
            code, body = web_post(web, weight, {"weight": bad})
            assert code == 400 and body["error"].startswith("weight must be an integer 0..100"), body
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port(d)}") as ch:
            stub = pb_grpc.MaglevStub(ch)
            assert stub.GetBackend(pb.GetBackendRequest(name="web1"), timeout=10).state != "paused"
            fe = stub.GetFrontend(pb.GetFrontendRequest(name="web"), timeout=10)
            assert fe.pools[0].backends[0].weight == 100
        code, body = web_post(web, pause)
        assert (code, body["state"]) == (200, "paused"), "the same request from the page itself works"
        logged(d, "audit", action="PauseBackend", who="web:ops", result="ok")
    finally:
        d.stop()
        d.kill()


def test_maglevc_into_a_closed_pipe_exits_quietly(tmp_path: Path) -> None:
    d = start(tmp_path)
    try:
        read, write = os.pipe()
        os.close(read)  # the reader is gone before maglevc writes its first line
        try:
            r = subprocess.run(
                [sys.executable, "-m", "maglev.maglevc", "--server", f"127.0.0.1:{grpc_port(d)}", "show", "backends"],
                stdout=write, stderr=subprocess.PIPE, text=True, env=source_env(), timeout=60,
            )  # fmt: skip
        finally:
            os.close(write)
        assert r.returncode == 0 and r.stderr == "", r.stderr
    finally:
        d.stop()
        d.kill()
