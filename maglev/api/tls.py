"""TLS for the gRPC listener: its certificate, key and client CA, rotated without a
restart (the clients' side is ``client.py``).

The server uses grpcio's dynamic credentials: grpc asks ``_fetch`` at every new
handshake whether there is a newer certificate configuration, and a reload puts
one there once it has read and checked the files. Connections already open keep
the certificate they were made with.
"""

from __future__ import annotations

import datetime
import ssl
import threading
from dataclasses import dataclass

import grpc
from cryptography import x509

from ..textfile import FileProblem, read_bytes

MAX_PEM = 1 << 20


class TlsError(Exception):
    """A certificate, key or CA file that cannot be used; the message names it and why."""


@dataclass(frozen=True)
class TlsFiles:
    cert: str
    key: str
    client_ca: str = ""  # set: client certificates are required (mTLS)


@dataclass(frozen=True)
class ServerTlsMaterial:
    cert: bytes
    key: bytes
    client_ca: bytes | None
    subject: str
    not_after: datetime.datetime

    def describe(self) -> dict[str, str | bool]:
        return {"subject": self.subject, "not_after": self.not_after.isoformat(), "mtls": self.client_ca is not None}


def read_pem(flag: str, path: str) -> bytes:
    try:
        return read_bytes(path, MAX_PEM)
    except FileProblem as e:
        raise TlsError(f"{flag}: {e}") from None


def _certificate(flag: str, path: str, data: bytes) -> x509.Certificate:
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise TlsError(f"{flag}: {path} holds no PEM certificate") from None
    return certs[0]


def _check_pair(files: TlsFiles) -> None:
    """The key must be the certificate's (ssl reads the files itself, already checked as regular)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(files.cert, files.key)
    except ssl.SSLError as e:
        reason = "the key does not match the certificate" if "MISMATCH" in str(e) else f"not a usable key ({e})"
        raise TlsError(f"--grpc-tls-key: {files.key}: {reason}") from None
    except OSError as e:
        raise TlsError(f"--grpc-tls-key: cannot read {files.key}: {e.strerror}") from None


def load_server_material(files: TlsFiles) -> ServerTlsMaterial:
    """Read and check the listener's files; raises TlsError naming the flag."""
    cert = read_pem("--grpc-tls-cert", files.cert)
    key = read_pem("--grpc-tls-key", files.key)
    leaf = _certificate("--grpc-tls-cert", files.cert, cert)
    _check_pair(files)
    ca: bytes | None = None
    if files.client_ca:
        ca = read_pem("--grpc-tls-client-ca", files.client_ca)
        _certificate("--grpc-tls-client-ca", files.client_ca, ca)
    return ServerTlsMaterial(cert, key, ca, leaf.subject.rfc4514_string(), leaf.not_valid_after_utc)


class ServerTls:
    """The listener's credentials, and their rotation (``reread``, on the reactor thread)."""

    def __init__(self, files: TlsFiles) -> None:
        self.files = files
        self.material = load_server_material(files)
        self._pending: grpc.ServerCertificateConfiguration | None = None
        self._lock = threading.Lock()  # _fetch runs on grpc's own threads

    @property
    def mtls(self) -> bool:
        return bool(self.files.client_ca)

    def _config(self, m: ServerTlsMaterial) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration([(m.key, m.cert)], root_certificates=m.client_ca)

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            self._config(self.material), self._fetch, require_client_authentication=self.mtls
        )

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        with self._lock:
            pending, self._pending = self._pending, None
        return pending

    def reread(self) -> bool:
        """Read the files again; True when they changed (new handshakes use them). Raises TlsError,
        and then the running certificate stays."""
        material = load_server_material(self.files)
        if material == self.material:
            return False
        with self._lock:
            self._pending = self._config(material)
        self.material = material
        return True
