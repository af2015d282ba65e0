"""HTTPS checks on the multiplexed sockets against real TLS servers on loopback:
SNI and Host, verification, the codes of TLS failures, and session resumption
between probes of a backend (kept from a pass, dropped on a failure)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from maglev.config import CheckType, HealthCheck, HttpParams
from maglev.health.probes import ProbeFactory, RawHttpProbe, run
from maglev.health.probes.tls import TlsBackend, TlsConversation, TlsFailure, client_context
from maglev.health.state import ProbeResult

from .servers import TlsServer, self_signed
from .test_probes import backend, reactor

pytestmark = pytest.mark.slow


def https(port: int, timeout: float = 1.0, **params: Any) -> HealthCheck:
    return HealthCheck("hc", CheckType.HTTPS, port=port, timeout=timeout, params=HttpParams(**params))


@contextmanager
def https_probe(server: TlsServer, timeout: float) -> Iterator[RawHttpProbe]:
    """One backend's HTTPS probe against ``server``; the factory and the server closed after."""
    f = ProbeFactory(reactor())
    try:
        p = f.probe_for(backend(), https(server.port, timeout=timeout))
        assert isinstance(p, RawHttpProbe) and p.tls is not None
        yield p
    finally:
        f.close()
        server.close()


def session_of(p: RawHttpProbe) -> object:
    """The backend's kept session (read through a call: each read is a new fact)."""
    return p.tls.session if p.tls is not None else None


async def probes(hc: HealthCheck, count: int) -> tuple[list[ProbeResult], RawHttpProbe]:
    """``count`` probes in turn, of one backend's probe (so it may resume)."""
    f = ProbeFactory(reactor())
    try:
        p = f.probe_for(backend(), hc)
        assert isinstance(p, RawHttpProbe)
        return [await run(p) for _ in range(count)], p
    finally:
        f.close()


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("tls12", [False, True], ids=["tls1.3", "tls1.2"])
async def test_https_resumes_the_last_session_of_a_pass(tls12: bool) -> None:
    server = TlsServer(tls12=tls12)
    try:
        results, p = await probes(https(server.port, host="demo.example"), 4)
        seen = server.wait(4)
    finally:
        server.close()
    assert [(r.ok, r.code, r.detail) for r in results] == [(True, "L7OK", "HTTP 200")] * 4
    assert [h.resumed for h in seen] == [False, True, True, True]
    assert {h.version for h in seen} == {"TLSv1.2" if tls12 else "TLSv1.3"}
    assert [h.sni for h in seen] == ["demo.example"] * 4
    assert b"Host: demo.example:%d\r\n" % server.port in seen[0].request
    assert p.tls is not None and p.tls.session is not None


@pytest_twisted.ensureDeferred
async def test_https_an_http_failure_keeps_the_session_a_tls_failure_drops_it() -> None:
    server = TlsServer(status=503)
    with https_probe(server, timeout=0.5) as p:
        failed = [await run(p) for _ in range(2)]
        # TLS worked: the failures are the backend's answer, and the second probe resumed.
        assert [(r.ok, r.code, r.detail) for r in failed] == [(False, "L7STS", "HTTP 503")] * 2
        assert session_of(p) is not None
        server.close_in_handshake = True
        broken = await run(p)
        assert (broken.ok, broken.code) == (False, "L6RSP") and session_of(p) is None, broken
        server.close_in_handshake, server.status = False, 200
        again = await run(p)
        seen = server.wait(3)
    assert (again.ok, again.code) == (True, "L7OK"), again
    assert [h.resumed for h in seen] == [False, True, False]  # after the TLS failure: a full handshake


@pytest_twisted.ensureDeferred
async def test_https_a_timeout_keeps_the_session() -> None:
    server = TlsServer()
    with https_probe(server, timeout=0.5) as p:
        assert (await run(p)).ok
        kept = session_of(p)
        server.hold = True  # accepts, then never answers: the handshake does not finish in time
        slow = await run(p)
        assert (slow.ok, slow.code) == (False, "L6TOUT"), slow
        assert session_of(p) is kept  # a backend too busy to answer is spared a full handshake
        server.hold = False
        assert (await run(p)).ok
        seen = server.wait(2)
    assert [h.resumed for h in seen] == [False, True]


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("tls12", [False, True], ids=["tls1.3", "tls1.2"])
async def test_https_a_cancelled_probe_leaves_the_session_resumable(tls12: bool) -> None:
    # TLS 1.2 resumes the very session kept: freed without a shutdown, OpenSSL would mark it
    # not resumable (TLS 1.3 has moved on to a new ticket's session by then).
    server = TlsServer(tls12=tls12)
    with https_probe(server, timeout=5.0) as p:
        assert (await run(p)).ok
        server.hold_answer = True
        pending = run(p)
        pending.addErrback(lambda _: None)  # cancelled: no result
        await deferToThread(server.wait, 2)  # its handshake finished (resumed), the request is in
        pending.cancel()  # the backend was paused, say, while its probe waited for the answer
        server.hold_answer = False
        assert (await run(p)).ok
        seen = server.wait(3)
    assert [h.resumed for h in seen] == [False, True, True]


@pytest_twisted.ensureDeferred
async def test_https_without_tickets_on_the_backend_does_full_handshakes() -> None:
    server = TlsServer(tickets=0)
    try:
        results, _ = await probes(https(server.port), 3)
        seen = server.wait(3)
    finally:
        server.close()
    assert all(r.ok for r in results), results
    assert [h.resumed for h in seen] == [False, False, False]
    assert [h.sni for h in seen] == [None] * 3  # no host: nothing to send as SNI (never the address)


@pytest_twisted.ensureDeferred
async def test_https_body_over_many_records() -> None:
    body = b"x" * 40000 + b"MARKER" + b"y" * 100
    server = TlsServer(body=body, chunks=20)
    try:
        found, _ = await probes(https(server.port, expect_body="MARKER"), 1)
        missing, _ = await probes(https(server.port, expect_body="ABSENT"), 1)
    finally:
        server.close()
    assert (found[0].ok, found[0].code) == (True, "L7OK"), found
    assert (missing[0].ok, missing[0].code) == (False, "L7RSP"), missing
    assert "does not match 'ABSENT'" in missing[0].detail


@pytest_twisted.ensureDeferred
async def test_https_closed_during_the_handshake_and_verification() -> None:
    closing = TlsServer(close_in_handshake=True)
    server = TlsServer()
    try:
        closed, _ = await probes(https(closing.port), 1)
        # Verification on: the self-signed certificate is nobody's root.
        rejected, p = await probes(https(server.port, host="localhost", insecure=False), 2)
    finally:
        closing.close()
        server.close()
    assert (closed[0].ok, closed[0].code) == (False, "L6RSP"), closed
    assert closed[0].detail == "TLS: connection closed during the handshake"
    assert [(r.ok, r.code) for r in rejected] == [(False, "L6RSP")] * 2, rejected
    assert rejected[0].detail == "TLS: certificate verify failed", rejected
    assert p.tls is not None and p.tls.session is None


# --- the conversation alone, against a server SSLObject in memory -----------------------------


def server_context(tickets: int = 2) -> ssl.SSLContext:
    import tempfile

    key_pem, cert_pem = self_signed()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.NamedTemporaryFile() as f:
        f.write(key_pem + cert_pem)
        f.flush()
        ctx.load_cert_chain(f.name)
    ctx.num_tickets = tickets
    return ctx


def converse(tls: TlsConversation, server: ssl.SSLObject, s_in: ssl.MemoryBIO, s_out: ssl.MemoryBIO,
             answer: bytes) -> tuple[bytes, bool]:  # fmt: skip
    """Shuttles bytes until the client has the answer; returns (plaintext, eof)."""
    plain, eof, answered = b"", False, False
    for _ in range(20):
        out, got, ended = tls.step()
        plain += got
        eof = eof or ended
        if plain or eof:
            return plain, eof
        s_in.write(out)
        try:
            server.do_handshake()
            request = server.read(4096)
            if request and not answered:
                if not answer:  # the server only had to get the request
                    return b"", False
                server.write(answer)
                answered = True
        except ssl.SSLWantReadError:
            pass
        back = s_out.read()
        if back:
            tls.receive(back)
    raise AssertionError("no answer")


@pytest.mark.parametrize("verify", [False, True])
def test_tls_backend_names(verify: bool) -> None:
    table = [
        # address, host, SNI, the name the certificate must have (verified)
        ("192.0.2.1", None, None, "192.0.2.1"),
        ("192.0.2.1", "www.example", b"www.example", "www.example"),
        ("2001:db8::1", "2001:db8::2", None, "2001:db8::2"),
        ("fe80::1%eth0", None, None, "fe80::1"),
    ]
    for address, host, sni, name in table:
        b = TlsBackend(address, host, verify)
        assert (b.server_name, b.verify_name) == (sni, name if verify else None), (address, host)
        assert b.context is client_context(verify)


def test_tls_conversation_resumes_and_ends() -> None:
    sctx = server_context()
    backend = TlsBackend("127.0.0.1", None, verify=False)
    for round_ in range(3):
        s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO()
        server = sctx.wrap_bio(s_in, s_out, server_side=True)
        tls = backend.conversation(b"GET / HTTP/1.1\r\n\r\n")
        plain, _ = converse(tls, server, s_in, s_out, b"HTTP/1.1 200 OK\r\n\r\n")
        assert plain.startswith(b"HTTP/1.1 200"), plain
        assert server.session_reused is (round_ > 0)
        tls.end(False)
        assert backend.session is not None
    # The peer's end without close_notify is an end, not an error; a failure drops the session.
    s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = sctx.wrap_bio(s_in, s_out, server_side=True)
    tls = backend.conversation(b"GET / HTTP/1.1\r\n\r\n")
    converse(tls, server, s_in, s_out, b"")
    tls.receive(b"")
    assert tls.step()[1:] == (b"", True)
    tls.end(True)  # as after a TLS failure
    assert backend.session is None


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", "TLS: wrong version number"),
        (b"", "TLS: connection closed during the handshake"),
        (b"\x15\x03\x03\x00\x02\x02\x28", "TLS: tls alert handshake failure"),
    ],
    ids=["plain-http", "closed", "alert"],
)
def test_tls_conversation_failures_name_the_problem(data: bytes, detail: str) -> None:
    tls = TlsBackend("127.0.0.1", None, verify=False).conversation(b"GET / HTTP/1.1\r\n\r\n")
    hello, plain, eof = tls.step()
    assert hello[:1] == b"\x16" and (plain, eof) == (b"", False)  # a ClientHello record
    tls.receive(data)
    with pytest.raises(TlsFailure) as e:
        tls.step()
    assert str(e.value) == detail


def test_the_client_hello_offers_one_classic_key_share() -> None:
    hello, _, _ = TlsBackend("127.0.0.1", "www.example", verify=False).conversation(b"").step()
    assert b"\x00\x1d\x00\x20" in hello  # a key share: X25519, 32 bytes
    assert b"\x11\xec" not in hello  # no X25519MLKEM768 (1,216 bytes more to make per probe)
    assert b"www.example" in hello  # SNI
    assert len(hello) < 600, len(hello)
