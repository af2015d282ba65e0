"""The raw HTTP check's judgement, byte by byte: a table of responses."""

from __future__ import annotations

import pytest

from maglev.config import HttpParams, StatusRange
from maglev.health.probes.rawhttp import MAX_BODY, HttpVerdict, request_bytes

OK_200 = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
NO_MATCH = (False, "L7RSP", "HTTP 200, body does not match 'ok'")
HUGE = b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * MAX_BODY + b"ok"


@pytest.mark.parametrize(
    ("params", "chunks", "verdict"),
    [
        (HttpParams(), [OK_200], (True, "L7OK", "HTTP 200")),
        (HttpParams(), [b"HTTP/1.1 2", b"00 OK\r"], None),  # status line not complete yet
        (HttpParams(), [b"HTTP/1.1 2", b"00 OK\r\n"], (True, "L7OK", "HTTP 200")),
        (HttpParams(), [b"HTTP/1.0 503 Busy\r\n"], (False, "L7STS", "HTTP 503")),
        (HttpParams(expect_status=(StatusRange(503, 503),)), [b"HTTP/1.0 503 x\r\n"], (True, "L7OK", "HTTP 503")),
        (HttpParams(), [b"SSH-2.0-OpenSSH\r\n"], (False, "L7RSP", "bad response: b'SSH-2.0-OpenSSH'")),
        (HttpParams(), [b"HTTP/1.1 20 OK\r\n"], (False, "L7RSP", "bad response: b'HTTP/1.1 20 OK'")),
        (HttpParams(), [b""], (False, "L7RSP", "bad response: no HTTP status line")),
        (HttpParams(expect_body="ok$"), [OK_200], (True, "L7OK", "HTTP 200")),
        (HttpParams(expect_body="ok"), [b"HTTP/1.1 200 OK\r\nX: y\r\n"], None),  # headers not ended
        (HttpParams(expect_body="ok"), [b"HTTP/1.1 200 OK\r\n\r\nnope", b""], NO_MATCH),
        (HttpParams(expect_body="ok"), [HUGE], NO_MATCH),
        (HttpParams(expect_body="ok"), [b"HTTP/1.1 404 No\r\n\r\nok"], (False, "L7STS", "HTTP 404")),
    ],
)  # fmt: skip
def test_judge(params: HttpParams, chunks: list[bytes], verdict: tuple[bool, str, str] | None) -> None:
    v = HttpVerdict(params)
    buffer = b""
    result = None
    for chunk in chunks:
        buffer += chunk
        result = v.judge(buffer, eof=chunk == b"")
        if result is not None:
            break
    assert result == verdict


def test_timeout_detail_says_how_far_it_got() -> None:
    v = HttpVerdict(HttpParams(expect_body="ok"))
    assert v.timeout_detail() == "no response before the timeout"
    v.judge(b"HTTP/1.1 200 OK\r\n", eof=False)
    assert v.timeout_detail() == "body did not match before the timeout"


@pytest.mark.parametrize(
    ("params", "address", "port", "host"),
    [
        (HttpParams(), "192.0.2.1", 80, "192.0.2.1"),
        (HttpParams(host="www.example.com"), "192.0.2.1", 8080, "www.example.com:8080"),
        (HttpParams(), "2001:db8::1", 8080, "[2001:db8::1]:8080"),
    ],
)
def test_request(params: HttpParams, address: str, port: int, host: str) -> None:
    text = request_bytes(params, address, port).decode()
    assert text.startswith(f"GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: vpp-maglev/")
    assert text.endswith("\r\nConnection: close\r\n\r\n")
