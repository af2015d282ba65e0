"""TLS for the clients that go through Twisted's TLS: the gRPC check (HTTP/2 over a
Twisted connection) and maglevt's HTTPS probes of VIPs. HTTP(S) checks do not:
they run on the multiplexed sockets (``tcp.py``, ``tls.py``).
"""

from __future__ import annotations

from typing import Any

from OpenSSL import SSL
from twisted.internet import ssl as tssl
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from zope.interface import implementer


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
