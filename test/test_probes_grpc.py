"""The grpc check against a real grpcio health servicer (plaintext and TLS), its status flipped."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_twisted
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from maglev.config import CheckType, GrpcParams, HealthCheck, load_config
from maglev.config.errors import ConfigError
from maglev.health.probes.grpccheck import verdict
from maglev.health.state import ProbeResult

from .certs import Authority
from .probing import probe_once
from .servers import BlackHole, port_of, refused_port, stop, tcp_server

pytestmark = pytest.mark.slow
SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


def reactor() -> Any:
    from twisted.internet import reactor as r

    return r


class HealthServer:
    """A grpcio server with the standard health servicer, on loopback."""

    def __init__(self, tls: tuple[bytes, bytes] | None = None, with_health: bool = True) -> None:
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        self.health = health.HealthServicer()
        if with_health:
            health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        if tls is None:
            self.port = self.server.add_insecure_port("127.0.0.1:0")
        else:
            creds = grpc.ssl_server_credentials([(tls[1], tls[0])])
            self.port = self.server.add_secure_port("127.0.0.1:0", creds)
        self.server.start()

    def set(self, service: str, status: int) -> None:
        self.health.set(service, status)

    def close(self) -> None:
        self.server.stop(None)


@pytest.fixture
def plain() -> Iterator[HealthServer]:
    s = HealthServer()
    yield s
    s.close()


@pytest.fixture
def tls_pair(tmp_path: Path) -> tuple[bytes, bytes]:
    pair = Authority(tmp_path / "ca").issue("server", "grpc.example", sans=("grpc.example", "127.0.0.1"))
    return pair.cert.read_bytes(), pair.key.read_bytes()


def check(port: int, timeout: float = 1.0, **params: Any) -> HealthCheck:
    return HealthCheck("hc", CheckType.GRPC, port=port, timeout=timeout, params=GrpcParams(**params))


async def probe(hc: HealthCheck) -> ProbeResult:
    return await probe_once(hc)


@pytest_twisted.ensureDeferred
async def test_grpc_check_follows_the_servicers_status(plain: HealthServer) -> None:
    plain.set("", SERVING)
    r = await probe(check(plain.port))
    assert (r.ok, r.code, r.detail) == (True, "L7OK", "SERVING") and 0 < r.duration < 1
    plain.set("", NOT_SERVING)
    r = await probe(check(plain.port))
    assert (r.ok, r.code, r.detail) == (False, "L7STS", "NOT_SERVING")
    plain.set("shop.Cart", SERVING)
    r = await probe(check(plain.port, service="shop.Cart"))
    assert (r.ok, r.code) == (True, "L7OK"), "a named service has its own status"
    r = await probe(check(plain.port, service="no.Such"))
    assert (r.ok, r.code, r.detail) == (False, "L7STS", "NOT_FOUND: no such service")
    plain.set("shop.Cart", health_pb2.HealthCheckResponse.SERVICE_UNKNOWN)
    r = await probe(check(plain.port, service="shop.Cart"))
    assert (r.ok, r.code, r.detail) == (False, "L7STS", "SERVICE_UNKNOWN")


@pytest_twisted.ensureDeferred
async def test_grpc_check_without_a_health_service() -> None:
    s = HealthServer(with_health=False)
    try:
        r = await probe(check(s.port))
    finally:
        s.close()
    assert (r.ok, r.code, r.detail) == (False, "L7STS", "UNIMPLEMENTED: no grpc.health.v1 service")


@pytest_twisted.ensureDeferred
async def test_grpc_check_over_tls(tls_pair: tuple[bytes, bytes]) -> None:
    s = HealthServer(tls=tls_pair)
    s.set("", SERVING)
    try:
        r = await probe(check(s.port, tls=True, host="grpc.example"))  # insecure: an untrusted CA is fine
        assert (r.ok, r.code) == (True, "L7OK"), r
        r = await probe(check(s.port, tls=True, host="grpc.example", insecure=False))
        assert (r.ok, r.code) == (False, "L6RSP") and "TLS" in r.detail, r  # our test CA is nobody's root
        r = await probe(check(s.port))  # plaintext to a TLS server: not a gRPC answer
        assert not r.ok and r.code in ("L7RSP", "L7TOUT"), r
    finally:
        s.close()


@pytest_twisted.ensureDeferred
async def test_grpc_check_transport_failures() -> None:
    r = await probe(check(refused_port()))
    assert (r.ok, r.code, r.detail) == (False, "L4CON", "connection refused")
    hole = BlackHole()  # the accept queue is full: the connection never completes
    try:
        r = await probe(check(hole.port, timeout=0.3))
    finally:
        hole.close()
    assert (r.ok, r.code, r.detail) == (False, "L4TOUT", "no connection before the timeout")
    silent = tcp_server(reactor())  # accepts, says nothing
    try:
        r = await probe(check(port_of(silent), timeout=0.3))
    finally:
        await stop(silent)
    assert (r.ok, r.code, r.detail) == (False, "L7TOUT", "no answer before the timeout")


@pytest.mark.parametrize(
    ("status", "message", "body", "expected"),
    [
        (None, "", b"", (False, "L7RSP", "no grpc-status in the answer")),
        (14, "upstream gone", b"", (False, "L7STS", "UNAVAILABLE: upstream gone")),
        (0, "", b"\x01\x00\x00\x00\x00", (False, "L7RSP", "not one uncompressed gRPC message")),
        (0, "", b"\x00\x00\x00\x00\x09\x08", (False, "L7RSP", "message of 1 bytes, framed as 9")),
        (0, "", b"\x00\x00\x00\x00\x02\x08\x01", (True, "L7OK", "SERVING")),
    ],
)
def test_grpc_verdicts(status: int | None, message: str, body: bytes, expected: tuple[bool, str, str]) -> None:
    assert verdict(status, message, body) == expected


def test_grpc_config() -> None:
    cfg = load_config("maglev:\n  healthchecks:\n    g: {type: grpc, port: 50051, params: {service: x, tls: true}}\n")
    assert cfg.healthchecks["g"].params == GrpcParams(service="x", tls=True)
    with pytest.raises(ConfigError, match="maglev.healthchecks.g.port: required for grpc checks"):
        load_config("maglev:\n  healthchecks:\n    g: {type: grpc}\n")
    with pytest.raises(ConfigError, match="params.tls: expected true or false"):
        load_config("maglev:\n  healthchecks:\n    g: {type: grpc, port: 1, params: {tls: maybe}}\n")


def connection_of(prober: Any) -> Any:
    return prober.connection


@pytest_twisted.ensureDeferred
async def test_one_connection_serves_probe_after_probe_until_it_fails(plain: HealthServer) -> None:
    from maglev.health.probes.grpccheck import GrpcProber

    prober = GrpcProber(reactor(), "127.0.0.1", check(plain.port), None)
    plain.set("", SERVING)
    assert (await prober.probe()).ok
    kept = prober.connection
    assert kept is not None and kept.up
    plain.set("", NOT_SERVING)
    r = await prober.probe()
    assert (r.ok, r.detail) == (False, "NOT_SERVING") and prober.connection is kept, "a new stream, not a connection"
    plain.set("", SERVING)
    assert (await prober.probe()).ok and prober.connection is kept
    prober.close()  # a probe done with closes its connection
    assert kept.closed and connection_of(prober) is None
    assert (await prober.probe()).ok and connection_of(prober) not in (None, kept), "a new one for the next probe"
    plain.close()  # the server goes: the kept connection with it, and the next probe finds none
    r = await prober.probe()
    assert not r.ok and r.code in ("L7RSP", "L4CON"), r
    r = await prober.probe()
    assert (r.ok, r.code) == (False, "L4CON") and connection_of(prober) is None
