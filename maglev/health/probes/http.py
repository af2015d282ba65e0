"""HTTPS probes with twisted.web.client.Agent (plain HTTP runs on ``rawhttp.py``).

The connection always goes to the backend's literal IP (no DNS, no thread
hop, and it can be created inside a netns); ``params.host`` only supplies the
Host header and the TLS SNI. A new connection per probe, TLS applied exactly
once, the body read only as far as ``expect-body`` needs.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Any

from OpenSSL import SSL
from service_identity import CertificateError, VerificationError
from twisted.internet import error as terror
from twisted.internet import ssl as tssl
from twisted.internet.defer import CancelledError, Deferred, TimeoutError
from twisted.internet.endpoints import wrapClientTLS
from twisted.internet.error import ConnectError, ConnectingCancelledError, ConnectionRefusedError
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator, IStreamClientEndpoint
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import Agent, HTTPConnectionPool, ResponseFailed, ResponseNeverReceived
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgentEndpointFactory, IResponse
from zope.interface import implementer

from ...config import CheckType, HealthCheck, HttpParams
from ..netns import Netns, backend_endpoint
from ..state import ProbeResult
from . import rawhttp

if TYPE_CHECKING:
    from ...reactor import Reactor

USER_AGENT = rawhttp.USER_AGENT.encode()
MAX_BODY = rawhttp.MAX_BODY


@implementer(IOpenSSLClientConnectionCreator)
class InsecureTLS:
    """TLS without certificate checks, still sending SNI; the context is built once."""

    _context: SSL.Context | None = None

    def __init__(self, server_name: str | None) -> None:
        self.server_name = server_name.encode("idna") if server_name else None

    @classmethod
    def context(cls) -> SSL.Context:
        if cls._context is None:
            cls._context = tssl.CertificateOptions().getContext()
        return cls._context

    def clientConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        conn = SSL.Connection(self.context(), None)
        if self.server_name:
            conn.set_tlsext_host_name(self.server_name)
        conn.set_app_data(tlsProtocol)
        conn.set_connect_state()
        return conn


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@implementer(IAgentEndpointFactory)
class _BackendEndpoints:
    """Every URI maps to the backend's address and the check's port."""

    def __init__(
        self,
        reactor: Reactor,
        address: str,
        port: int,
        timeout: float,
        source: str | None,
        tls: IOpenSSLClientConnectionCreator | None,
        netns: Netns | None,
    ) -> None:
        self.reactor, self.address, self.port, self.timeout = reactor, address, port, timeout
        self.source, self.tls, self.netns = source, tls, netns
        self.connected: Any = None

    def endpointForURI(self, uri: Any) -> IStreamClientEndpoint:
        ep = backend_endpoint(self.reactor, self.address, self.port, self.timeout, self.source, self.netns)
        if self.tls is not None:
            ep = _Remembering(wrapClientTLS(self.tls, ep), self)
        return ep


@implementer(IStreamClientEndpoint)
class _Remembering:
    """Keeps the last connected protocol so a timeout can tell whether TLS completed."""

    def __init__(self, inner: IStreamClientEndpoint, owner: _BackendEndpoints) -> None:
        self.inner = inner
        self.owner = owner

    def connect(self, factory: Any) -> Deferred[Any]:
        def remember(protocol: Any) -> Any:
            self.owner.connected = protocol
            return protocol

        return self.inner.connect(factory).addCallback(remember)


def tls_incomplete(protocol: Any) -> bool:
    """True when the connection's TLS handshake has not finished (no cipher yet)."""
    transport = getattr(protocol, "transport", None)
    get_handle = getattr(transport, "getHandle", None)
    if get_handle is None:
        return False
    try:
        return get_handle().get_cipher_name() is None
    except Exception:
        return False


class _BodyReader(Protocol):
    """Reads until ``pattern`` matches or MAX_BODY bytes; without a pattern, stops at once."""

    def __init__(self, pattern: re.Pattern[bytes] | None, done: Deferred[bool]) -> None:
        self.pattern = pattern
        self.done = done
        self.data = b""

    def connectionMade(self) -> None:
        if self.pattern is None:
            self._finish(True)

    def dataReceived(self, data: bytes) -> None:
        if self.done.called or self.pattern is None:
            return
        self.data += data
        if self.pattern.search(self.data):
            self._finish(True)
        elif len(self.data) >= MAX_BODY:
            self._finish(False)

    def connectionLost(self, reason: Failure = Failure(Exception())) -> None:  # noqa: B008
        if not self.done.called:
            self.done.callback(self.pattern is None or bool(self.pattern.search(self.data)))

    def _finish(self, matched: bool) -> None:
        self.done.callback(matched)
        transport: Any = self.transport
        if transport is not None:
            transport.stopProducing()  # closes the connection: we have what we need


class HttpProber:
    """Builds the Agent for one backend and check; ``probe()`` runs one request."""

    def __init__(self, reactor: Reactor, address: str, hc: HealthCheck, netns: Netns | None = None) -> None:
        params = hc.params
        assert isinstance(params, HttpParams) and hc.port is not None
        self.reactor = reactor
        self.hc = hc
        self.params = params
        self.https = hc.type is CheckType.HTTPS
        host = params.host or address
        tls: IOpenSSLClientConnectionCreator | None = None
        if self.https:
            sni = params.host if params.host and not _is_ip(params.host) else None
            tls = InsecureTLS(sni) if params.insecure else tssl.optionsForClientTLS(host)
        src = hc.probe_ipv6_src if ":" in address else hc.probe_ipv4_src
        source = str(src) if src is not None else None
        self.endpoints = _BackendEndpoints(reactor, address, hc.port, hc.timeout, source, tls, netns)
        self.agent = Agent.usingEndpointFactory(
            reactor, self.endpoints, pool=HTTPConnectionPool(reactor, persistent=False)
        )
        netloc = f"[{host}]" if ":" in host else host
        default_port = 443 if self.https else 80
        if hc.port != default_port:
            netloc += f":{hc.port}"
        self.url = f"{'https' if self.https else 'http'}://{netloc}{params.path}".encode()
        headers = {b"User-Agent": [USER_AGENT]}
        for name, value in params.headers:
            headers[name.encode()] = [value.encode()]
        self.headers = Headers(headers)
        self.pattern = re.compile(params.expect_body.encode()) if params.expect_body else None

    def probe(self) -> Deferred[ProbeResult]:
        started = self.reactor.seconds()
        self.endpoints.connected = None
        d: Deferred[IResponse] = self.agent.request(self.params.method.encode(), self.url, self.headers)
        result: Deferred[ProbeResult] = d.addCallback(self._response, started)
        result.addTimeout(self.hc.timeout, self.reactor)
        result.addErrback(self._failed, started)
        return result

    def _response(self, response: IResponse, started: float) -> Deferred[ProbeResult]:
        code = response.code
        readers: list[_BodyReader] = []

        def stop_reading(_: Deferred[bool]) -> None:  # the probe timed out while reading the body
            transport: Any = readers[0].transport if readers else None
            if transport is not None:
                transport.stopProducing()

        done: Deferred[bool] = Deferred(stop_reading)
        pattern = self.pattern if self.params.status_ok(code) else None
        readers.append(_BodyReader(pattern, done))
        response.deliverBody(readers[0])

        def judged(matched: bool) -> ProbeResult:
            elapsed = self.reactor.seconds() - started
            if not self.params.status_ok(code):
                return ProbeResult(False, "L7STS", f"HTTP {code}", elapsed)
            if not matched:
                return ProbeResult(
                    False, "L7RSP", f"HTTP {code}, body does not match {self.params.expect_body!r}", elapsed
                )
            return ProbeResult(True, "L7OK", f"HTTP {code}", elapsed)

        return done.addCallback(judged)

    def _failed(self, failure: Failure, started: float) -> ProbeResult:
        elapsed = self.reactor.seconds() - started
        code, detail = classify(failure, self.https)
        if code == "L7TOUT" and self.https and tls_incomplete(self.endpoints.connected):
            code, detail = "L6TOUT", "TLS handshake did not finish before the timeout"
        return ProbeResult(False, code, detail, elapsed)


def _reasons(failure: Failure) -> list[Failure]:
    value = failure.value
    if isinstance(value, (ResponseFailed, ResponseNeverReceived)):
        return [r for r in value.reasons if isinstance(r, Failure)]
    return [failure]


def classify(failure: Failure, https: bool) -> tuple[str, str]:
    """Map how an Agent request failed to a HAProxy-style code and a readable detail."""
    if failure.check(ConnectingCancelledError, terror.TimeoutError):
        return "L4TOUT", "connect timeout"
    if failure.check(ConnectionRefusedError):
        return "L4CON", "connection refused"
    if failure.check(ConnectError):
        return "L4CON", failure.getErrorMessage()
    inner = _reasons(failure)
    for r in inner:
        if r.check(SSL.Error):
            return "L6RSP", f"TLS: {_ssl_message(r.value) if r.value is not None else 'error'}"
        if r.check(VerificationError, CertificateError):
            return "L6RSP", "TLS: certificate does not match the host name"
    if failure.check(TimeoutError, CancelledError) or any(r.check(CancelledError, TimeoutError) for r in inner):
        return "L7TOUT", "no response before the timeout"
    messages = "; ".join(r.getErrorMessage() for r in inner) or failure.getErrorMessage()
    return "L7RSP", f"bad response: {messages}"


def _ssl_message(err: BaseException) -> str:
    args = getattr(err, "args", ())
    if args and isinstance(args[0], list) and args[0]:
        entry = args[0][0]
        if isinstance(entry, tuple) and len(entry) >= 3:
            return str(entry[2])
    return str(err) or type(err).__name__
