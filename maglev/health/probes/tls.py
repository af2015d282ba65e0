"""TLS for HTTPS probes over memory BIOs: the bytes go over the multiplexed probe
sockets (``tcp.py``), TLS itself is pyOpenSSL's ``Connection`` without a socket.

pyOpenSSL rather than the standard library's ``ssl``: the standard library copies
a session (serializing and parsing it, the peer's certificate included) each time
it is read or set, about 370 µs per resumed probe, more than the handshake, and
pyOpenSSL comes with cryptography's OpenSSL, whose handshakes cost less than the
system's 3.0 (docs/performance.md).

One ``TlsBackend`` per backend and check keeps what survives between probes: the
client context (shared by every check with the same verification) and the last
session, so the next probe resumes it (a TLS 1.3 ticket or a TLS 1.2 session):
no certificate, no signature, a fraction of a full handshake on both sides. Every
finished handshake leaves its session (its newest ticket), whatever the HTTP
answer; a TLS failure (a handshake refused, a certificate rejected) drops it, so
the next probe is a full handshake that checks the certificate again. A probe that
never got as far (refused, timed out) keeps it: a backend slow to answer is spared
full handshakes. A backend that cannot resume a session (new keys) simply does a
full handshake.

``TlsConversation`` is one probe's TLS: bytes from the socket in, bytes for the
socket and plaintext out. Plain logic: no Twisted, no sockets.
"""

from __future__ import annotations

import ipaddress

from cryptography.hazmat.primitives.asymmetric import ec
from OpenSSL import SSL
from service_identity import CertificateError, VerificationError
from service_identity.pyopenssl import verify_hostname, verify_ip_address

MAX_PLAIN = 65536  # plaintext taken per step; the judge wants far less
MAX_FLIGHT = 262144  # what one step may have to send (a request is at most a few KiB)
_QUIET = SSL.SENT_SHUTDOWN | SSL.RECEIVED_SHUTDOWN

_contexts: dict[bool, SSL.Context] = {}


class TlsFailure(Exception):
    """The handshake or a record failed; the text is the probe's detail."""


def client_context(verify: bool) -> SSL.Context:
    """One context per kind of verification, shared (sessions belong to their context)."""
    ctx = _contexts.get(verify)
    if ctx is None:
        ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
        if verify:
            ctx.set_verify(SSL.VERIFY_PEER)
            ctx.set_default_verify_paths()
        else:
            ctx.set_verify(SSL.VERIFY_NONE)
        # A backend that closes after its answer without close_notify is no protocol error to us.
        ctx.set_options(SSL.OP_IGNORE_UNEXPECTED_EOF)
        _classic_key_share(ctx)
        ctx.set_alpn_protos([b"http/1.1"])
        _contexts[verify] = ctx
    return ctx


def _classic_key_share(ctx: SSL.Context) -> None:
    """One key share, X25519, with P-256 (which every TLS 1.3 server must accept) on offer:
    a health check carries nothing to keep secret for years, and the default hybrid
    post-quantum share costs more than the rest of a resumed handshake. X25519 saves
    another quarter over P-256, but pyOpenSSL has no public call to set groups: where its
    binding lacks the call, P-256 alone (through the public one)."""
    try:
        from OpenSSL._util import lib

        if lib.SSL_CTX_set1_curves_list(getattr(ctx, "_context"), b"X25519:P-256") == 1:  # noqa: B009
            return
    except (ImportError, AttributeError, TypeError):
        pass
    ctx.set_tmp_ecdh(ec.SECP256R1())


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return False
    return True


# What the compiled engine needs for a backend's TLS: (verify, SNI, the name the certificate
# must have, whether that name is an address); it keeps its own session (its OpenSSL is the
# system's, so sessions do not cross between the two paths).
EngineTls = tuple[bool, "str | None", "str | None", bool]


class TlsBackend:
    """One backend's TLS settings and its resumable session."""

    __slots__ = ("context", "server_name", "verify_name", "session")

    def __init__(self, address: str, host: str | None, verify: bool) -> None:
        self.context = client_context(verify)
        # SNI is ``host`` when it is a name (never an address); verified, the certificate
        # must match the name, or the address, the operator gave.
        self.server_name = host.encode("idna") if host and not is_ip(host) else None
        self.verify_name = (host or address).partition("%")[0] if verify else None
        self.session: SSL.Session | None = None

    def conversation(self, request: bytes) -> TlsConversation:
        return TlsConversation(self, request)

    def for_engine(self) -> EngineTls:
        name, sni = self.verify_name, self.server_name
        return (name is not None, sni.decode("ascii") if sni else None, name, name is not None and is_ip(name))


class TlsConversation:
    """One probe's TLS: ``receive`` what the socket read, ``step`` for what to send and
    the plaintext that came; the request is written once the handshake finished."""

    __slots__ = ("backend", "conn", "request", "handshaken")

    def __init__(self, backend: TlsBackend, request: bytes) -> None:
        self.backend = backend
        conn = self.conn = SSL.Connection(backend.context, None)
        conn.set_connect_state()
        if backend.server_name is not None:
            conn.set_tlsext_host_name(backend.server_name)
        if backend.session is not None:
            conn.set_session(backend.session)
        self.request = request
        self.handshaken = False

    def receive(self, data: bytes) -> None:
        """Bytes from the socket; b"" is its end."""
        if data:
            self.conn.bio_write(data)
        else:
            self.conn.bio_shutdown()

    def step(self) -> tuple[bytes, bytes, bool]:
        """(bytes to send, plaintext received, whether the peer ended). Raises TlsFailure."""
        conn = self.conn
        plain = b""
        eof = False
        try:
            if not self.handshaken:
                try:
                    conn.do_handshake()
                except SSL.WantReadError:
                    return self._outgoing(), b"", False
                self.handshaken = True
                self._verify_name()
                conn.send(self.request)
            while len(plain) < MAX_PLAIN:
                try:
                    chunk = conn.recv(MAX_PLAIN)
                except SSL.WantReadError:
                    break
                if not chunk:
                    eof = True
                    break
                plain += chunk
        except (SSL.ZeroReturnError, SSL.SysCallError):
            # The peer's end (a close_notify, or the connection's end without one).
            if not self.handshaken:
                raise TlsFailure("TLS: connection closed during the handshake") from None
            eof = True
        except SSL.Error as e:
            if not self.handshaken and _unexpected_eof(e):
                raise TlsFailure("TLS: connection closed during the handshake") from None
            raise TlsFailure(f"TLS: {describe(e)}") from None
        return self._outgoing(), plain, eof

    def _outgoing(self) -> bytes:
        # One read: a client's flight (a ClientHello, a Finished and the request) is far
        # less than this, and each empty read costs an exception.
        try:
            return self.conn.bio_read(MAX_FLIGHT)
        except SSL.WantReadError:
            return b""

    def _verify_name(self) -> None:
        name = self.backend.verify_name
        if name is None:
            return
        try:
            if is_ip(name):
                verify_ip_address(self.conn, name)
            else:
                verify_hostname(self.conn, name)
        except (VerificationError, CertificateError):
            raise TlsFailure(f"TLS: the certificate is not for {name}") from None

    def end(self, tls_failed: bool) -> None:
        """The probe is judged: its backend keeps this handshake's session, or loses the one
        it had when TLS failed (a certificate rejected after the handshake, too: a resumed
        session is never verified again). The connection is let go as if shut down, or
        OpenSSL marks its session as not resumable (the socket is reset, as every probe's)."""
        conn = self.conn
        if tls_failed:
            self.backend.session = None
        elif self.handshaken:
            self.backend.session = conn.get_session()
        conn.set_shutdown(_QUIET)

    def abandon(self) -> None:
        """The probe was cancelled: nothing learnt, the kept session stays resumable."""
        self.conn.set_shutdown(_QUIET)


def _unexpected_eof(e: SSL.Error) -> bool:
    return "unexpected eof" in describe(e)


def describe(e: SSL.Error) -> str:
    """OpenSSL's reasons, readable: 'certificate verify failed', 'wrong version number'."""
    entries = e.args[0] if e.args and isinstance(e.args[0], list) else []
    reasons = [entry[2] for entry in entries if isinstance(entry, tuple) and len(entry) >= 3]
    if reasons and all(isinstance(r, str) for r in reasons):
        return "; ".join(dict.fromkeys(str(r).replace("_", " ").lower() for r in reasons if r))
    return str(e) or type(e).__name__


__all__ = ["EngineTls", "TlsBackend", "TlsConversation", "TlsFailure", "client_context", "is_ip"]
