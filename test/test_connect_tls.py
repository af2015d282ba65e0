"""HTTPS in the compiled engine: OpenSSL over the probe socket against real TLS servers on
loopback (``TlsServer``, in a thread), with made-up time as in ``test_connect.py``.

What the engine must do as the Python path does (``test_probes_https.py``): resume the
backend's last session, send SNI from ``host``, verify when asked, word each failure the
same way, drop the session when TLS fails and keep it otherwise.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from maglev.config import HttpParams
from maglev.health.probes import _connect
from maglev.health.probes.connect import ConnectCheck, result_of
from maglev.health.probes.rawhttp import HttpVerdict
from maglev.health.probes.tls import TlsBackend

from .helpers import until
from .servers import TlsServer
from .test_connect import LOOPBACK, T0, a_bad_status_comes_back, answered, e, engine, flying, until_answered

__all__ = ["e"]  # test_connect's engine fixture, used here too

pytestmark = pytest.mark.slow

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: demo.example\r\nConnection: close\r\n\r\n"


@pytest.fixture
def server() -> Iterator[TlsServer]:
    s = TlsServer()
    yield s
    s.close()


def https_target(
    e: _connect.ConnectChecks, server: TlsServer | int, host: str | None = None, verify: bool = False,
    timeout: float = 2.0,
) -> int:  # fmt: skip
    """An HTTPS target on 127.0.0.1, with TLS as RawHttpProbe would give it."""
    number = server if isinstance(server, int) else server.port
    tls = TlsBackend("127.0.0.1", host, verify).for_engine()
    return e.add(0, socket.AF_INET, LOOPBACK, number, timeout, 0, REQUEST, [(200, 399)], tls)


def judged(answer: tuple[Any, ...]) -> tuple[bool, str, str]:
    _tid, _ok, err, duration, detail, _base, _late, data = answer
    r = result_of(err, duration, detail, data, lambda: HttpVerdict(HttpParams()))
    return r.ok, r.code, r.detail


def probe(e: _connect.ConnectChecks, tid: int, now: float = T0) -> tuple[bool, str, str]:
    """One probe of ``tid``, judged (waits on the engine's fd, bounded)."""
    answer = e.start(tid, now)
    if answer is None:
        [answer] = until_answered(e, now)
    assert answer[0] == tid
    return judged(answer)


@pytest.mark.parametrize("tls12", [False, True], ids=["tls1.3", "tls1.2"])
def test_https_on_the_engine_resumes_the_last_session_and_sends_sni(e: _connect.ConnectChecks, tls12: bool) -> None:
    s = TlsServer(tls12=tls12)
    try:
        tid = https_target(e, s, host="demo.example")
        results = [probe(e, tid, T0 + i) for i in range(4)]
        seen = s.wait(4)
    finally:
        s.close()
    assert results == [(True, "L7OK", "HTTP 200")] * 4
    assert [h.resumed for h in seen] == [False, True, True, True]
    assert {h.version for h in seen} == {"TLSv1.2" if tls12 else "TLSv1.3"}
    assert [h.sni for h in seen] == ["demo.example"] * 4
    assert [h.request for h in seen] == [REQUEST] * 4
    assert e.counts()["sockets_opened"] == 1, "the socket is reused, as for plain probes"


def test_without_a_host_no_sni_is_sent(e: _connect.ConnectChecks, server: TlsServer) -> None:
    tid = https_target(e, server)
    assert probe(e, tid) == (True, "L7OK", "HTTP 200")
    assert [h.sni for h in server.wait(1)] == [None]  # never the address


def test_https_on_autopilot_counts_passes_and_hands_back_a_bad_status(
    e: _connect.ConnectChecks, server: TlsServer
) -> None:
    tid = https_target(e, server)
    e.autopilot(tid, T0, 1.0, 0.0, 0.05)
    now = T0
    for _ in range(3):
        e.tick(now)
        for _wait in range(50):  # the handshake's steps, then the answer: each an edge
            assert not answered(e, now + 0.001), "a pass is counted, not reported"
            stats = e.stats(tid)
            if stats[1]:
                break
        assert (stats[1], stats[8]) == (1, 200)
        now = stats[7] or 0.0
    server.status = 503
    e.tick(now)
    [answer] = until_answered(e, now)
    assert (answer[0], judged(answer), e.phase(tid)) == (tid, (False, "L7STS", "HTTP 503"), (0, 0))
    assert [h.resumed for h in server.wait(4)] == [False, True, True, True]  # a bad status is still TLS that worked


def answering_server(answer: bytes) -> tuple[socket.socket, threading.Thread]:
    """Reads the ClientHello and sends ``answer``, once."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(2.0)
            conn.recv(65536)
            conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        # a web server on the wrong port
        (b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n", "TLS: wrong version number"),
        # a fatal alert, handshake_failure (the system's OpenSSL 3.0 names alerts so)
        (b"\x15\x03\x03\x00\x02\x02\x28", "TLS: sslv3 alert handshake failure"),
        (b"", "TLS: connection closed during the handshake"),
    ],
    ids=["plain-http", "alert", "closed"],
)
def test_tls_failures_name_the_problem(e: _connect.ConnectChecks, answer: bytes, detail: str) -> None:
    server, thread = answering_server(answer)
    try:
        assert probe(e, https_target(e, server.getsockname()[1])) == (False, "L6RSP", detail)
        thread.join(5.0)
    finally:
        server.close()


def test_a_backend_that_closes_in_the_handshake_or_refuses(e: _connect.ConnectChecks) -> None:
    closing = TlsServer(close_in_handshake=True)
    refused = socket.create_server(("127.0.0.1", 0))
    refused_port = refused.getsockname()[1]
    refused.close()
    try:
        assert probe(e, https_target(e, closing)) == (False, "L6RSP", "TLS: connection closed during the handshake")
        assert probe(e, https_target(e, refused_port)) == (False, "L4CON", "connection refused")
    finally:
        closing.close()


def pump(e: _connect.ConnectChecks, now: float, done: Any) -> None:
    """Let the engine handle its sockets until ``done()`` (at most 200 waits of 50 ms)."""
    for _ in range(200):
        if done():
            return
        ready, _, _ = select.select([e.fileno()], [], [], 0.05)
        if ready:
            assert not e.poll(now), "no probe was to end yet"
    raise AssertionError("not done after 200 waits")


def test_a_tls_failure_drops_the_session_a_timeout_keeps_it(e: _connect.ConnectChecks, server: TlsServer) -> None:
    tid = https_target(e, server, timeout=0.5)
    assert probe(e, tid)[0]
    server.hold = True  # accepts, never answers: the handshake cannot finish
    assert e.start(tid, T0 + 1) is None
    assert answered(e, T0 + 1.001) == [], "connected, the ClientHello sent"
    [late] = e.tick(T0 + 1.5) or []
    assert judged(late) == (False, "L6TOUT", "TLS handshake did not finish before the timeout")
    server.hold = False
    assert probe(e, tid, T0 + 2)[0]  # resumed: a busy backend is spared a full handshake
    server.close_in_handshake = True
    assert probe(e, tid, T0 + 3)[1] == "L6RSP"
    server.close_in_handshake = False
    assert probe(e, tid, T0 + 4)[0]  # after a TLS failure: a full handshake again
    assert [h.resumed for h in server.wait(3)] == [False, True, False]


def test_an_answer_that_never_comes_after_the_handshake_is_an_l7_timeout(
    e: _connect.ConnectChecks, server: TlsServer
) -> None:
    tid = https_target(e, server, timeout=0.5)
    server.hold_answer = True
    assert e.start(tid, T0) is None
    pump(e, T0 + 0.001, lambda: server.handshakes)  # the server has the request: TLS is done
    [late] = e.tick(T0 + 0.5) or []
    assert judged(late) == (False, "L7TOUT", "no response before the timeout")


@pytest.mark.parametrize("tls12", [False, True], ids=["tls1.3", "tls1.2"])
def test_a_cancelled_probe_leaves_the_session_resumable(e: _connect.ConnectChecks, tls12: bool) -> None:
    # Freed without a shutdown, OpenSSL would mark a TLS 1.2 session not resumable.
    s = TlsServer(tls12=tls12)
    try:
        tid = https_target(e, s)
        assert probe(e, tid)[0]
        s.hold_answer = True
        assert e.start(tid, T0 + 1) is None
        pump(e, T0 + 1.001, lambda: len(s.handshakes) == 2)
        e.cancel(tid)  # paused, say, while its probe waited for the answer
        s.hold_answer = False
        assert probe(e, tid, T0 + 2)[0]
        seen = s.wait(3)
    finally:
        s.close()
    assert [h.resumed for h in seen] == [False, True, True]


@pytest.fixture
def engines(
    server: TlsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[_connect.ConnectChecks, _connect.ConnectChecks]]:
    """Two engines: one whose verifying context has only the system's roots, and one that
    trusts ``server``'s certificate (OpenSSL reads SSL_CERT_FILE when a context loads its
    default paths, at an engine's first verified target)."""
    untrusted = engine()
    https_target(untrusted, server, "localhost", verify=True)
    ca = tmp_path / "ca.pem"
    ca.write_bytes(server.cert_pem)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    trusted = engine()
    yield untrusted, trusted
    untrusted.close()
    trusted.close()


def test_verification_checks_the_chain_and_the_name_or_address(
    engines: tuple[_connect.ConnectChecks, _connect.ConnectChecks], server: TlsServer
) -> None:
    untrusted, trusted = engines
    assert probe(untrusted, https_target(untrusted, server, "localhost", verify=True)) == (
        False, "L6RSP", "TLS: certificate verify failed",
    )  # fmt: skip
    cases = [
        ("localhost", (True, "L7OK", "HTTP 200")),
        (None, (True, "L7OK", "HTTP 200")),  # the address, 127.0.0.1, is in the certificate
        ("other.example", (False, "L6RSP", "TLS: the certificate is not for other.example")),
        ("127.0.0.2", (False, "L6RSP", "TLS: the certificate is not for 127.0.0.2")),
    ]
    for host, expected in cases:
        assert probe(trusted, https_target(trusted, server, host, verify=True)) == expected, host


@pytest.mark.parametrize(
    ("tls", "error"),
    [
        ((True, None, None, False), "needs the name to verify"),
        ((False, None, "localhost", False), "needs the name to verify"),
        (("yes",), "tls must be"),
    ],
)
def test_bad_tls_targets_are_refused_with_the_reason(e: _connect.ConnectChecks, tls: Any, error: str) -> None:
    with pytest.raises((ValueError, TypeError), match=error):
        e.add(0, socket.AF_INET, LOOPBACK, 443, 1.0, 0, REQUEST, [(200, 399)], tls)
    with pytest.raises(ValueError, match="TLS needs an HTTP request"):
        e.add(0, socket.AF_INET, LOOPBACK, 443, 1.0, 0, None, None, (False, None, None, False))


# --- in the health service, on the real reactor ----------------------------------------------

HTTPS_CONFIG = """\
maglev:
  healthchecks:
    hc: {{type: https, port: {port}, interval: 50ms, fast-interval: 20ms, down-interval: 50ms, timeout: 500ms,
          rise: 2, fall: 3, params: {{path: /healthz, host: demo.example}}}}
  backends:
    b: {{address: 127.0.0.1, healthcheck: hc}}
"""


@pytest_twisted.ensureDeferred
async def test_a_steady_https_backend_flies_on_the_engine_and_a_bad_status_comes_back(server: TlsServer) -> None:
    svc, bus, p = await flying(HTTPS_CONFIG.format(port=server.port))
    try:
        flown = len(server.handshakes)
        await until(lambda: len(server.handshakes) >= flown + 5)  # the engine's probes reach the server
        assert isinstance(p.probe.pilot, ConnectCheck) and p.autopilot
        engine_probes = server.handshakes[flown:]
        # The engine keeps its own session: its first handshake may be full, the rest resume.
        assert all(h.resumed for h in engine_probes[1:]), engine_probes
        assert {h.sni for h in engine_probes} == {"demo.example"}
        q = svc.prober("b")
        assert q.health.last_result is not None and (q.health.last_result.code, q.health.last_result.detail) == (
            "L7OK", "HTTP 200",
        )  # fmt: skip

        def answer_500() -> None:
            server.status = 500

        await a_bad_status_comes_back(bus, p, answer_500)
    finally:
        svc.stopService()
