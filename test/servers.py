"""Real peers for probe tests: HTTP(S) servers whose answers a test controls,
TCP listeners that accept, refuse, greet, stay silent or never answer."""

from __future__ import annotations

import datetime
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import ssl
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory, Protocol
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site


@dataclass
class Behaviour:
    status: int = 200
    body: bytes = b"ok\n"
    delay: float = 0.0  # seconds before answering
    hang: bool = False  # never answer
    endless: bool = False  # send the body, then never finish it
    requests: list[dict[str, Any]] = field(default_factory=list)


class ControlledResource(Resource):
    isLeaf = True

    def __init__(self, behaviour: Behaviour, reactor: Any) -> None:
        super().__init__()
        self.b = behaviour
        self.reactor = reactor

    def render(self, request: Request) -> bytes | int:
        self.b.requests.append(
            {
                "method": request.method,
                "path": request.uri,
                "host": request.getHeader("host"),
                "user-agent": request.getHeader("user-agent"),
                "headers": dict(request.requestHeaders.getAllRawHeaders()),
            }
        )
        if self.b.hang:
            return NOT_DONE_YET
        request.setResponseCode(self.b.status)
        if self.b.endless:
            request.write(self.b.body)
            return NOT_DONE_YET
        if self.b.delay:

            def answer() -> None:
                if not request.finished and not request._disconnected:
                    request.write(self.b.body)
                    request.finish()

            self.reactor.callLater(self.b.delay, answer)
            return NOT_DONE_YET
        return self.b.body


def http_server(reactor: Any, behaviour: Behaviour, host: str = "127.0.0.1") -> IListeningPort:
    site = Site(ControlledResource(behaviour, reactor))
    site.noisy = False
    port: IListeningPort = reactor.listenTCP(0, site, interface=host)
    return port


def self_signed(name: str = "localhost", address: str | None = None) -> tuple[bytes, bytes]:
    """A key and its self-signed certificate for ``name`` (and ``address``, if given)."""
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = [x509.DNSName(name)]
    if address is not None:
        alt.append(x509.IPAddress(ipaddress.ip_address(address)))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .sign(key, hashes.SHA256())
    )
    return (
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        cert.public_bytes(serialization.Encoding.PEM),
    )


def https_server(reactor: Any, behaviour: Behaviour, sni_seen: list[bytes | None]) -> IListeningPort:
    """HTTPS with a self-signed certificate for 'localhost'; records the SNI of each handshake."""
    key_pem, cert_pem = self_signed()
    options = ssl.PrivateCertificate.loadPEM(key_pem + cert_pem).options()
    ctx = options.getContext()
    ctx.set_tlsext_servername_callback(lambda conn: sni_seen.append(conn.get_servername()))
    site = Site(ControlledResource(behaviour, reactor))
    site.noisy = False
    port: IListeningPort = reactor.listenSSL(0, site, options, interface="127.0.0.1")
    return port


class _Greeter(Protocol):
    def connectionMade(self) -> None:
        greeting = getattr(self.factory, "greeting", b"")
        if greeting:
            assert self.transport is not None
            self.transport.write(greeting)


def tcp_server(reactor: Any, greeting: bytes = b"", host: str = "127.0.0.1") -> IListeningPort:
    """Accepts connections; sends ``greeting`` (if any) and then nothing."""
    factory = Factory.forProtocol(_Greeter)
    factory.greeting = greeting  # type: ignore[attr-defined]
    factory.noisy = False
    port: IListeningPort = reactor.listenTCP(0, factory, interface=host)
    return port


def refused_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on (bound then released)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
    return port


class BlackHole:
    """A listener whose accept queue is full: further SYNs are dropped, connects hang."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port: int = self.listener.getsockname()[1]
        self.fillers: list[socket.socket] = []
        for _ in range(3):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", self.port))
            self.fillers.append(s)

    def close(self) -> None:
        for s in self.fillers:
            s.close()
        self.listener.close()


def connecting_to(port: int) -> set[str]:
    """The sockets of this process (by inode) still connecting to 127.0.0.1:``port``. Not a
    count of every open file: one that another test left for the collector may close
    meanwhile."""
    ours = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            ours.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass  # the listing's own, closed by now
    found = set()
    with open("/proc/net/tcp") as table:
        lines = table.read().splitlines()[1:]
    for line in lines:
        fields = line.split()
        remote, state, inode = fields[2], fields[3], fields[9]
        if state == "02" and int(remote.split(":")[1], 16) == port and f"socket:[{inode}]" in ours:  # SYN_SENT
            found.add(inode)
    return found


def port_of(listening: IListeningPort) -> int:
    """The port a listener got (they all bind port 0)."""
    number: int = listening.getHost().port  # type: ignore[attr-defined]
    return number


def stop(listening: IListeningPort) -> Deferred[Any]:
    stopped: Deferred[Any] = maybeDeferred(listening.stopListening)
    return stopped


@dataclass
class TlsHandshake:
    sni: str | None
    resumed: bool
    version: str
    request: bytes


class TlsServer:
    """HTTPS on the standard library's TLS, in a thread: records each connection's SNI,
    TLS version, whether its session was resumed, and its request head.

    ``tickets=0`` turns TLS 1.3 resumption off; ``tls12`` caps the version (its
    sessions resume by session id or ticket); ``status``/``body`` are the answer;
    ``chunks`` writes the body in that many TLS records; ``close_in_handshake``
    closes the connection on its first bytes; ``hold`` accepts and never answers,
    ``hold_answer`` answers the handshake but not the request (the last three can
    change between probes). ``cert_pem`` is its certificate, for 'localhost' and
    127.0.0.1."""

    def __init__(
        self,
        tickets: int = 2,
        tls12: bool = False,
        status: int = 200,
        body: bytes = b"ok\n",
        chunks: int = 1,
        close_in_handshake: bool = False,
    ) -> None:
        import ssl
        import tempfile
        import threading

        key_pem, cert_pem = self_signed(address="127.0.0.1")
        self.cert_pem = cert_pem
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.NamedTemporaryFile() as f:
            f.write(key_pem + cert_pem)
            f.flush()
            self.ctx.load_cert_chain(f.name)
        self.ctx.num_tickets = tickets
        if tls12:
            self.ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        self.seen_sni: list[str | None] = []
        self.ctx.sni_callback = lambda sock, name, ctx: self.seen_sni.append(name)
        self.status, self.body, self.chunks = status, body, chunks
        self.close_in_handshake = close_in_handshake
        self.hold = False  # accept and never answer
        self.hold_answer = False  # finish the handshake, read the request, never answer
        self.held: list[socket.socket] = []
        self.handshakes: list[TlsHandshake] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.served = threading.Condition()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        import ssl

        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            conn.settimeout(5)
            try:
                if self.close_in_handshake:
                    conn.recv(65536)  # all of the ClientHello: the close is a FIN, not a reset
                    continue
                if self.hold:
                    self.held.append(conn)  # never answered; closed with the server
                    continue
                tls = self.ctx.wrap_socket(conn, server_side=True)
                conn = tls  # what to close (or keep) from now on
                head = b""
                while b"\r\n\r\n" not in head:
                    data = tls.recv(4096)
                    if not data:
                        break
                    head += data
                sni = self.seen_sni[-1] if self.seen_sni else None
                with self.served:  # before answering: a probe resets once it has its answer
                    self.handshakes.append(TlsHandshake(sni, bool(tls.session_reused), tls.version() or "", head))
                    self.served.notify_all()
                if self.hold_answer:  # the handshake done, the request read: no answer
                    self.held.append(tls)
                    continue
                answer = f"HTTP/1.1 {self.status} X\r\nContent-Length: {len(self.body)}\r\n\r\n".encode()
                step = max(1, -(-len(self.body) // self.chunks))
                tls.sendall(answer)
                for i in range(0, len(self.body), step):
                    tls.sendall(self.body[i : i + step])
            except (OSError, ssl.SSLError):
                pass
            finally:
                if conn not in self.held:
                    conn.close()

    def wait(self, count: int, timeout: float = 5.0) -> list[TlsHandshake]:
        """Until ``count`` connections were served (bounded)."""
        with self.served:
            self.served.wait_for(lambda: len(self.handshakes) >= count, timeout)
            return list(self.handshakes)

    def close(self) -> None:
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (closing would not)
        except OSError:
            pass
        self.listener.close()
        self._thread.join(5)
        for conn in self.held:
            conn.close()
