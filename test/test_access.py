"""Who may drive the API (maglev.access), the web UI's Host check, and reading the
files an operator points maglevd at: plain tables of cases, no reactor, no grpc."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from maglev.access import (
    READ_METHODS,
    Caller,
    Policy,
    Role,
    decide,
    hash_token,
    is_loopback_peer,
    needed_role,
    parse_policy,
    peer_address,
)
from maglev.addresses import TcpAddress
from maglev.api.gen.maglev.v1 import maglev_pb2 as pb
from maglev.config import ConfigError, load_config
from maglev.config.yamltree import MAX_DEPTH
from maglev.textfile import FileProblem, read_bytes
from maglev.web.hosts import HostCheck, host_name

ALICE, GRAFANA = "alice-secret-token", "grafana-token"
POLICY = Policy(
    tokens={hash_token(ALICE): ("alice", Role.ADMIN), hash_token(GRAFANA): ("grafana", Role.READ)},
    subjects={"O=ops,CN=frontend": Role.ADMIN, "CN=dashboard": Role.READ},
)
LOOPBACK_READ = Policy(tokens=POLICY.tokens, subjects=POLICY.subjects, loopback=Role.READ)
READ, CHANGE, HEALTH = (
    "/maglev.v1.Maglev/ListBackends",
    "/maglev.v1.Maglev/PauseBackend",
    "/grpc.health.v1.Health/Check",
)
REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
LOCAL, REMOTE = "ipv4:127.0.0.1:5000", "ipv4:10.0.0.9:5000"


def caller(peer: str = REMOTE, token: str | None = None, subject: str | None = None, raw: str | None = None) -> Caller:
    auth = raw if raw is not None else (f"Bearer {token}" if token is not None else None)
    return Caller(peer, is_loopback_peer(peer), auth, subject)


@pytest.mark.parametrize(
    ("policy", "method", "who", "expected"),
    [
        # no tokens file: reads open, changes from loopback only
        (None, READ, caller(), (True, "anonymous", "")),
        (None, CHANGE, caller(LOCAL), (True, "loopback", "")),
        (None, CHANGE, caller(), (False, "anonymous", "permission_denied")),
        (None, CHANGE, caller(token=ALICE), (False, "anonymous", "permission_denied")),
        (None, HEALTH, caller(), (True, "anonymous", "")),
        # tokens file: every call identified
        (POLICY, READ, caller(), (False, "anonymous", "unauthenticated")),
        (POLICY, READ, caller(LOCAL), (False, "loopback", "unauthenticated")),
        (LOOPBACK_READ, READ, caller(LOCAL), (True, "loopback", "")),
        (LOOPBACK_READ, CHANGE, caller(LOCAL), (False, "loopback", "permission_denied")),
        (POLICY, READ, caller(token=GRAFANA), (True, "token:grafana", "")),
        (POLICY, CHANGE, caller(token=GRAFANA), (False, "token:grafana", "permission_denied")),
        (POLICY, CHANGE, caller(token=ALICE), (True, "token:alice", "")),
        (POLICY, REFLECTION, caller(token=GRAFANA), (True, "token:grafana", "")),
        (POLICY, REFLECTION, caller(), (False, "anonymous", "unauthenticated")),
        (POLICY, READ, caller(token="guess"), (False, "anonymous", "unauthenticated")),
        (POLICY, READ, caller(raw="Basic YTpi"), (False, "anonymous", "unauthenticated")),
        (POLICY, READ, caller(raw="Bearer "), (False, "anonymous", "unauthenticated")),
        (POLICY, HEALTH, caller(token="guess"), (True, "anonymous", "")),
        # client certificates (mTLS): the subject's role; a token wins over it
        (POLICY, CHANGE, caller(subject="O=ops,CN=frontend"), (True, "cert:O=ops,CN=frontend", "")),
        (POLICY, CHANGE, caller(subject="CN=dashboard"), (False, "cert:CN=dashboard", "permission_denied")),
        (POLICY, READ, caller(subject="CN=stranger"), (False, "cert:CN=stranger", "unauthenticated")),
        (POLICY, CHANGE, caller(subject="CN=dashboard", token=ALICE), (True, "token:alice", "")),
    ],
)
def test_decide(policy: Policy | None, method: str, who: Caller, expected: tuple[bool, str, str]) -> None:
    d = decide(policy, method, who)
    assert (d.allowed, d.who, d.refusal) == expected
    assert bool(d.message) != d.allowed, "a refusal says why; an acceptance says nothing"


def test_refusal_messages_tell_what_to_do() -> None:
    assert "--grpc-tokens" in decide(None, CHANGE, caller()).message
    assert (
        decide(POLICY, CHANGE, caller(token=GRAFANA)).message == "token:grafana has role read; PauseBackend needs admin"
    )
    assert "maglevc --token-file" in decide(POLICY, READ, caller()).message
    assert "'CN=stranger'" in decide(POLICY, READ, caller(subject="CN=stranger")).message


def test_every_rpc_is_classified_and_changes_need_admin() -> None:
    methods = set(pb.DESCRIPTOR.services_by_name["Maglev"].methods_by_name)
    assert READ_METHODS <= methods, "no stale names in the read list"
    changes = {m for m in methods if needed_role(f"/maglev.v1.Maglev/{m}") is Role.ADMIN}
    assert changes == {
        "PauseBackend", "ResumeBackend", "EnableBackend", "DisableBackend",
        "SetFrontendPoolBackendWeight", "ReloadConfig", "SyncVPPLBState", "ReleaseCheckerIsolation",
    }  # fmt: skip
    assert needed_role("/maglev.v1.Maglev/SomethingNew") is Role.ADMIN, "a new method is closed until listed"
    assert needed_role(HEALTH) is None


@pytest.mark.parametrize(
    ("peer", "loopback", "address"),
    [
        ("ipv4:127.0.0.1:41000", True, "127.0.0.1:41000"),
        ("ipv4:127.3.4.5:1", True, "127.3.4.5:1"),
        ("ipv6:[::1]:41000", True, "[::1]:41000"),
        ("ipv6:[::ffff:127.0.0.1]:41000", True, "[::ffff:127.0.0.1]:41000"),
        ("ipv6:[::ffff:10.0.0.1]:41000", False, "[::ffff:10.0.0.1]:41000"),
        ("ipv4:10.0.0.1:41000", False, "10.0.0.1:41000"),
        ("ipv6:[2001:db8::1]:5", False, "[2001:db8::1]:5"),
        ("unix:/run/maglev.sock", True, "unix:/run/maglev.sock"),
        ("", False, ""),
        ("ipv4:not-an-address:1", False, "not-an-address:1"),
    ],
)
def test_peers(peer: str, loopback: bool, address: str) -> None:
    assert (is_loopback_peer(peer), peer_address(peer)) == (loopback, address)


def test_tokens_file() -> None:
    text = f"""\
tokens:
  - {{name: alice, role: admin, sha256: {hash_token(ALICE)}}}
  - {{name: grafana, role: read, sha256: "{hash_token(GRAFANA).upper()}"}}
certificates:
  - {{subject: "O=ops,CN=frontend", role: admin}}
loopback: read
"""
    p = parse_policy(text)
    assert p.tokens == POLICY.tokens and p.subjects == {"O=ops,CN=frontend": Role.ADMIN} and p.loopback is Role.READ
    assert parse_policy("tokens: []\n").loopback is None


def entry(name: str, digit: str) -> str:
    return f"  - {{name: {name}, role: read, sha256: '{digit * 64}'}}\n"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("tokens: [{name: a, role: admin, sha256: '12ab'}]\n", "tokens[0].sha256: must be the token's SHA-256"),
        ("tokens: [{name: a, role: admin, sha256: 1234}]\n", "tokens[0].sha256: reads as a number: quote"),
        ("tokens: [{name: a, role: root, sha256: " + "0" * 64 + "}]\n", "tokens[0].role: must be one of read, admin"),
        ("tokens: [{name: a, role: read}]\n", "tokens[0].sha256: required key is missing"),
        ("tokens: [{name: a, role: read, token: x, sha256: " + "0" * 64 + "}]\n", "tokens[0].token: unknown key"),
        (
            "tokens:\n  - {name: a, role: read, sha256: '"
            + "0" * 64
            + "'}\n  - {name: b, role: read, sha256: '"
            + "0" * 64
            + "'}\n",
            "tokens[1].sha256: the same token as 'a'",
        ),
        (
            "tokens:\n  - {name: a, role: read, sha256: '"
            + "0" * 64
            + "'}\n  - {name: a, role: read, sha256: '"
            + "1" * 64
            + "'}\n",
            "tokens[1].name: token name 'a' is used twice",
        ),
        ("certificates: [{subject: CN=x}]\n", "certificates[0].role: required key is missing"),
        ("loopback: root\n", "loopback: must be one of none, read, admin"),
        ("tokens: {alice: x}\n", "tokens: expected a list"),
        ("users: []\n", "users: unknown key"),
        ("[" * 20000, "nested more than"),
    ],
)
def test_tokens_file_problems(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_policy(text)
    assert problem in str(e.value)


@pytest.mark.parametrize(
    ("bound", "extra", "header", "allowed"),
    [
        (TcpAddress("127.0.0.1", 8080), (), "127.0.0.1:8080", True),
        (TcpAddress("127.0.0.1", 8080), (), "localhost:8080", True),
        (TcpAddress("127.0.0.1", 8080), (), "evil.example:8080", False),
        (TcpAddress("127.0.0.1", 8080), (), "127.0.0.2:8080", False),
        (TcpAddress("127.0.0.1", 8080), ("router1",), "ROUTER1:8080", True),
        (TcpAddress("", 8080), (), "192.0.2.7:8080", True),
        (TcpAddress("", 8080), (), "[2001:db8::7]:8080", True),
        (TcpAddress("", 8080), (), "router1.example:8080", False),
        (TcpAddress("", 8080), (), "localhost", True),
        (TcpAddress("192.0.2.7", 8080), (), "192.0.2.7:8080", True),
        (TcpAddress("192.0.2.7", 8080), (), "192.0.2.8:8080", False),
        (TcpAddress("192.0.2.7", 8080), (), "localhost:8080", False),
        (TcpAddress("localhost", 8080), (), "[::1]:8080", True),
        (TcpAddress("::1", 8080), (), "[::1]:8080", True),
        (TcpAddress("127.0.0.1", 8080), (), "", False),
    ],
)
def test_web_host_check(bound: TcpAddress, extra: tuple[str, ...], header: str, allowed: bool) -> None:
    assert HostCheck(bound, extra).allows(header) is allowed


def test_host_name() -> None:
    assert [host_name(h) for h in ("a.example:80", "[::1]:8080", "::1", "A.Example.", "x")] == [
        "a.example", "::1", "::1", "a.example", "x",
    ]  # fmt: skip


def test_files_are_read_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    regular = tmp_path / "f"
    regular.write_bytes(b"x" * 100)
    cases = {
        str(fifo): "is not a regular file (a FIFO)",
        str(tmp_path): "is not a regular file (a directory)",
        "/dev/zero": "is not a regular file (a character device)",
        str(tmp_path / "missing"): "cannot read",
    }
    for path, problem in cases.items():
        with pytest.raises(FileProblem) as e:
            read_bytes(path, 1000)
        assert path in str(e.value) and problem in str(e.value)
    assert read_bytes(str(regular), 100) == b"x" * 100
    with pytest.raises(FileProblem, match="larger than 99 bytes"):
        read_bytes(str(regular), 99)


@pytest.mark.parametrize("opener", ["[", "{a: "])
def test_config_nesting_is_bounded(opener: str) -> None:
    for depth in (MAX_DEPTH + 1, 20_000):
        with pytest.raises(ConfigError) as e:
            load_config("maglev: " + opener * depth)
        assert e.value.kind.label == "structural" and "nested more than 64 levels deep" in str(e.value)
