"""The ``grpc`` check: ``grpc.health.v1.Health/Check`` over HTTP/2, on the reactor.

The call is one HTTP/2 stream, framed by the h2 library over a Twisted connection:
plaintext (h2c, prior knowledge) or TLS with ALPN ``h2``, SNI from ``host`` and the
same ``insecure`` rule as the HTTPS check (grpcio's own channels cannot skip
certificate verification, and would each bring a thread of their own). The request
and the answer are the health protocol's protobuf messages. Results:

- ``L7OK``: SERVING;
- ``L7STS``: NOT_SERVING, UNKNOWN, SERVICE_UNKNOWN, or a gRPC error status (NOT_FOUND:
  no such service; UNIMPLEMENTED: no health service), named in the detail;
- ``L7RSP``: not a gRPC answer (HTTP status, HTTP/2 errors, a stream reset, a bad message);
- ``L7TOUT``: no answer before the timeout; ``L6TOUT``/``L6RSP``: TLS not finished / failed;
- ``L4TOUT``/``L4CON``: no connection / refused.
"""

from __future__ import annotations

import struct
from typing import Any

import grpc
import h2.config
import h2.connection
import h2.events
import h2.exceptions
from grpc_health.v1 import health_pb2
from OpenSSL import SSL
from twisted.internet import error as twisted_error
from twisted.internet import ssl as tssl
from twisted.internet.defer import CancelledError, Deferred, TimeoutError
from twisted.internet.endpoints import wrapClientTLS
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.python.failure import Failure

from ...config import GrpcParams, HealthCheck
from ..netns import Netns, backend_endpoint
from ..state import ProbeResult
from .rawhttp import USER_AGENT
from .tls import is_ip
from .twisted_tls import InsecureTLS, tls_incomplete

PATH = "/grpc.health.v1.Health/Check"
STATUS_NAMES = {c.value[0]: c.name for c in grpc.StatusCode}
SERVING = {
    health_pb2.HealthCheckResponse.SERVING: "SERVING",
    health_pb2.HealthCheckResponse.NOT_SERVING: "NOT_SERVING",
    health_pb2.HealthCheckResponse.UNKNOWN: "UNKNOWN",
    health_pb2.HealthCheckResponse.SERVICE_UNKNOWN: "SERVICE_UNKNOWN",
}
MAX_MESSAGE = 64 * 1024
CLOSED = "the connection closed before an answer"


class InsecureH2TLS(InsecureTLS):
    """The HTTPS check's unverified TLS, offering HTTP/2 by ALPN (gRPC requires it)."""

    def clientConnectionForTLS(self, tlsProtocol: Any) -> Any:
        conn = super().clientConnectionForTLS(tlsProtocol)
        conn.set_alpn_protos([b"h2"])  # a client offers it per connection (Twisted sets it so too)
        return conn


def verdict(status: int | None, message: str, body: bytes) -> tuple[bool, str, str]:
    """(ok, code, detail) of a finished call: its grpc-status, grpc-message and response bytes."""
    if status is None:
        return False, "L7RSP", "no grpc-status in the answer"
    if status != 0:
        name = STATUS_NAMES.get(status, str(status))
        why = {5: "no such service", 12: "no grpc.health.v1 service"}.get(status, message or "error")
        return False, "L7STS", f"{name}: {why}"
    if len(body) < 5 or body[0] != 0:
        return False, "L7RSP", "not one uncompressed gRPC message"
    (length,) = struct.unpack_from(">I", body, 1)
    if len(body) != 5 + length:
        return False, "L7RSP", f"message of {len(body) - 5} bytes, framed as {length}"
    try:
        answer = health_pb2.HealthCheckResponse.FromString(body[5:])
    except Exception as e:  # protobuf's DecodeError
        return False, "L7RSP", f"bad HealthCheckResponse: {e}"
    name = SERVING.get(answer.status, str(answer.status))
    return answer.status == health_pb2.HealthCheckResponse.SERVING, "L7OK" if name == "SERVING" else "L7STS", name


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


class _Stream:
    """One Health/Check call: a stream of the backend's connection."""

    def __init__(self, finished: Deferred[tuple[bool, str, str]]) -> None:
        self.finished = finished
        self.body = b""
        self.status: int | None = None
        self.message = ""

    def done(self, ok: bool, code: str, detail: str) -> None:
        if not self.finished.called:
            self.finished.callback((ok, code, detail))


class _Connection(Protocol):
    """The backend's HTTP/2 connection, kept from probe to probe (as Envoy keeps it): a probe
    is a new stream on it. Any trouble (a timeout, GOAWAY, a protocol error, the peer
    closing) drops it, and the next probe connects anew."""

    def __init__(self, prober: GrpcProber) -> None:
        self.prober = prober
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.streams: dict[int, _Stream] = {}
        self.waiting: list[_Stream] = []  # calls made before the connection was up
        self.up = False
        self.closed = False

    def connectionMade(self) -> None:
        self.up = True
        self.conn.initiate_connection()
        waiting, self.waiting = self.waiting, []
        for call in waiting:
            self.call(call)
        self._flush()

    def call(self, call: _Stream) -> None:
        if not self.up:
            self.waiting.append(call)
            return
        p = self.prober
        c = self.conn
        sid = c.get_next_available_stream_id()
        self.streams[sid] = call
        c.send_headers(
            sid,
            [
                (":method", "POST"), (":scheme", "https" if p.params.tls else "http"), (":path", PATH),
                (":authority", p.authority), ("content-type", "application/grpc"), ("te", "trailers"),
                ("grpc-timeout", f"{max(int(p.hc.timeout * 1000), 1)}m"), ("user-agent", USER_AGENT),
            ],
        )  # fmt: skip
        c.send_data(sid, p.request, end_stream=True)
        self._flush()

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data and self.transport is not None:
            self.transport.write(data)

    def drop(
        self, ok: bool = False, code: str = "L7RSP", detail: str = "the connection closed before an answer"
    ) -> None:
        """End every call on it and close it: the next probe connects again."""
        self.closed = True
        if self.prober.connection is self:
            self.prober.connection = None
        calls, self.streams, self.waiting = [*self.streams.values(), *self.waiting], {}, []
        for call in calls:
            call.done(ok, code, detail)
        transport: Any = self.transport
        if transport is not None:
            transport.abortConnection()

    def dataReceived(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            self.drop(False, "L7RSP", f"HTTP/2 protocol error: {e}")
            return
        for ev in events:
            if isinstance(ev, h2.events.ConnectionTerminated):
                self.drop(False, "L7RSP", f"the server went away (GOAWAY, HTTP/2 error {ev.error_code})")
                return
            call = self.streams.get(getattr(ev, "stream_id", 0) or 0)
            if call is None:
                continue
            if isinstance(ev, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                headers = {_text(k): _text(v) for k, v in ev.headers or []}
                if isinstance(ev, h2.events.ResponseReceived) and headers.get(":status") != "200":
                    self._end(ev.stream_id, False, "L7RSP", f"HTTP status {headers.get(':status')}, not a gRPC answer")
                    continue
                if "grpc-status" in headers:  # in the trailers, or a trailers-only answer
                    try:
                        call.status = int(headers["grpc-status"])
                    except ValueError:
                        self._end(ev.stream_id, False, "L7RSP", f"grpc-status {headers['grpc-status']!r}")
                        continue
                    call.message = headers.get("grpc-message", "")
            elif isinstance(ev, h2.events.DataReceived):
                call.body += ev.data
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                if len(call.body) > MAX_MESSAGE:
                    self._end(ev.stream_id, False, "L7RSP", f"an answer over {MAX_MESSAGE} bytes")
            elif isinstance(ev, h2.events.StreamEnded):
                self._end(ev.stream_id, *verdict(call.status, call.message, call.body))
            elif isinstance(ev, h2.events.StreamReset):
                self._end(ev.stream_id, False, "L7RSP", f"stream reset (HTTP/2 error {ev.error_code})")
        self._flush()

    def _end(self, sid: int, ok: bool, code: str, detail: str) -> None:
        call = self.streams.pop(sid, None)
        if call is not None:
            call.done(ok, code, detail)
        if not ok and code == "L7RSP":
            self.drop()  # a backend that answers badly gets a fresh connection next time

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.up = False
        if self.closed:
            return
        tls = reason.check(SSL.Error)
        if tls:
            self.drop(False, "L6RSP", f"TLS failed: {reason.getErrorMessage()}")
        else:
            self.drop()


class GrpcProber:
    """The ``grpc`` check of one backend: ``probe()`` makes one Health/Check call, on the
    backend's kept connection when it has one."""

    def __init__(
        self, reactor: Any, address: str, hc: HealthCheck, source: str | None, netns: Netns | None = None
    ) -> None:
        params = hc.params
        assert isinstance(params, GrpcParams) and hc.port is not None
        self.reactor = reactor
        self.hc = hc
        self.params = params
        host = params.host or address
        self.authority = (f"[{host}]" if ":" in host else host) + f":{hc.port}"
        msg = health_pb2.HealthCheckRequest(service=params.service).SerializeToString()
        self.request = b"\x00" + struct.pack(">I", len(msg)) + msg
        ep: Any = backend_endpoint(reactor, address, hc.port, hc.timeout, source, netns)
        if params.tls:
            sni = params.host if params.host and not is_ip(params.host) else None
            creator: Any = (
                InsecureH2TLS(sni) if params.insecure else tssl.optionsForClientTLS(host, acceptableProtocols=[b"h2"])
            )
            ep = wrapClientTLS(creator, ep)
        self.endpoint = ep
        self.connection: _Connection | None = None
        self.connecting: Deferred[Any] | None = None

    def probe(self) -> Deferred[ProbeResult]:
        started = self.reactor.seconds()
        finished: Deferred[tuple[bool, str, str]] = Deferred()
        call = _Stream(finished)
        conn = self.connection
        fresh = conn is None
        if conn is None:
            conn = self.connection = _Connection(self)
            self.connecting = connecting = self.endpoint.connect(Factory.forProtocol(lambda: conn))
            connecting.addErrback(self._connect_failed, conn)
        conn.call(call)

        def result(outcome: tuple[bool, str, str]) -> ProbeResult:
            ok, code, detail = outcome
            return ProbeResult(ok, code, detail, self.reactor.seconds() - started)

        def timed_out(f: Failure) -> ProbeResult:
            f.trap(TimeoutError, CancelledError)
            took = self.reactor.seconds() - started
            was_up = conn.up
            handle: Any = conn.transport
            if fresh and not was_up and self.connecting is not None:
                self.connecting.cancel()
            conn.closed = True  # a connection that let a call time out is not trusted again
            if self.connection is conn:
                self.connection = None
            if handle is not None:
                handle.abortConnection()
            if not was_up:
                return ProbeResult(False, "L4TOUT", "no connection before the timeout", took)
            if self.params.tls and tls_incomplete(conn):
                return ProbeResult(False, "L6TOUT", "TLS handshake not finished before the timeout", took)
            return ProbeResult(False, "L7TOUT", "no answer before the timeout", took)

        finished.addTimeout(self.hc.timeout, self.reactor)
        return finished.addCallbacks(result, timed_out)

    def close(self) -> None:
        """The probe is done with (its backend removed, its check changed): so is its connection."""
        conn, self.connection = self.connection, None
        if conn is not None:
            conn.drop(False, "L4CON", "the check was stopped")
        if self.connecting is not None:
            self.connecting.cancel()
            self.connecting = None

    def _connect_failed(self, f: Failure, conn: _Connection) -> None:
        if f.check(CancelledError):
            return
        if f.check(twisted_error.TimeoutError):
            conn.drop(False, "L4TOUT", "no connection before the timeout")
        elif f.check(twisted_error.ConnectionRefusedError):
            conn.drop(False, "L4CON", "connection refused")
        else:
            conn.drop(False, "L4CON", f.getErrorMessage())


__all__ = ["GrpcProber", "verdict"]
