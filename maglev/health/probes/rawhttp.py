"""Plain-HTTP health checks on the multiplexed raw TCP path (``tcp.py``).

The request is written in one send, and the answer is judged from the bytes as
they arrive: the status line decides unless ``expect-body`` asks for the body,
which is searched up to MAX_BODY bytes. No HTTP library: twisted.web's Agent
costs about ten times the CPU per probe (docs/performance.md). HTTPS is the same
over TLS (``tls.py``). Plain logic, no Twisted.
"""

from __future__ import annotations

import functools
import re

from ... import PROJECT_URL, __version__
from ...config import HttpParams

USER_AGENT = f"vpp-maglev/{__version__} (+{PROJECT_URL})"
MAX_BODY = 64 * 1024
MAX_HEAD = 16 * 1024

Verdict = tuple[bool, str, str]


def request_bytes(params: HttpParams, address: str, port: int, default_port: int = 80) -> bytes:
    """The probe's request: Host is ``params.host`` or the address, with the port unless
    the scheme's own (80, or 443 for HTTPS)."""
    host = params.host or address
    netloc = f"[{host}]" if ":" in host else host
    if port != default_port:
        netloc += f":{port}"
    lines = [f"{params.method} {params.path} HTTP/1.1", f"Host: {netloc}", f"User-Agent: {USER_AGENT}"]
    lines += [f"{name}: {value}" for name, value in params.headers]
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@functools.cache
def http_status(status: int) -> str:
    """A status as a probe's detail, one text for every backend that got it (each keeps its
    last result). Three digits: at most 900 of them."""
    return f"HTTP {status}"


def body_pattern(params: HttpParams) -> re.Pattern[bytes] | None:
    return re.compile(params.expect_body.encode()) if params.expect_body else None


class HttpVerdict:
    """Judges one response; ``judge`` returns None while more bytes are needed."""

    __slots__ = ("params", "pattern", "status")

    def __init__(self, params: HttpParams, pattern: re.Pattern[bytes] | None = None) -> None:
        """``pattern``: ``expect-body`` compiled once per check (one verdict per probe)."""
        self.params = params
        if pattern is None and params.expect_body:
            pattern = body_pattern(params)
        self.pattern = pattern
        self.status = 0

    def judge(self, buffer: bytes, eof: bool) -> Verdict | None:
        if not self.status:
            end = buffer.find(b"\r\n")
            if end < 0:
                if eof or len(buffer) > MAX_HEAD:
                    return False, "L7RSP", "bad response: no HTTP status line"
                return None
            parts = buffer[:end].split(b" ", 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not (parts[1].isdigit() and len(parts[1]) == 3):
                return False, "L7RSP", f"bad response: {buffer[:end][:80]!r}"
            self.status = int(parts[1])
            if not self.params.status_ok(self.status):
                return False, "L7STS", http_status(self.status)
            if self.pattern is None:
                return True, "L7OK", http_status(self.status)
        assert self.pattern is not None
        head_end = buffer.find(b"\r\n\r\n")
        if head_end < 0:
            if eof or len(buffer) > MAX_HEAD:
                return False, "L7RSP", "bad response: headers did not end"
            return None
        body = buffer[head_end + 4 : head_end + 4 + MAX_BODY]
        if self.pattern.search(body):
            return True, "L7OK", http_status(self.status)
        if eof or len(body) >= MAX_BODY:
            return False, "L7RSP", f"HTTP {self.status}, body does not match {self.params.expect_body!r}"
        return None

    def timeout_detail(self) -> str:
        return "no response before the timeout" if not self.status else "body did not match before the timeout"
