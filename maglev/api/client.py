"""How maglevc and maglevd-frontend reach a maglevd: plaintext or TLS (optionally with
a client certificate), and a bearer token sent as ``authorization`` metadata on
every call.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from ..textfile import FileProblem, read_bytes
from .tls import TlsError, read_pem


@dataclass(frozen=True)
class ClientTls:
    """A client's TLS flags (maglevc, maglevd-frontend): all empty = plaintext."""

    ca: str = ""
    cert: str = ""
    key: str = ""
    server_name: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.ca or self.cert or self.key or self.server_name)

    def check(self) -> None:
        """Raises TlsError for a half-given pair or an unreadable file."""
        if bool(self.cert) != bool(self.key):
            raise TlsError("--tls-cert and --tls-key go together (a client certificate and its key)")
        for flag, path in (("--tls-ca", self.ca), ("--tls-cert", self.cert), ("--tls-key", self.key)):
            if path:
                read_pem(flag, path)

    def credentials(self) -> grpc.ChannelCredentials:
        ca = read_pem("--tls-ca", self.ca) if self.ca else None  # None: the system's trust store
        cert = read_pem("--tls-cert", self.cert) if self.cert else None
        key = read_pem("--tls-key", self.key) if self.key else None
        return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)

    def options(self) -> list[tuple[str, str]]:
        return [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []


def read_token_file(path: str) -> str:
    """A client's token file: one line, the token itself. raises ValueError naming the flag."""
    try:
        text = read_bytes(path, 64 * 1024).decode("utf-8")
    except FileProblem as e:
        raise ValueError(f"--token-file: {e}") from None
    except UnicodeDecodeError:
        raise ValueError(f"--token-file: {path} is not UTF-8 text") from None
    token = text.strip()
    if not token or "\n" in token or any(not c.isprintable() or c.isspace() for c in token):
        raise ValueError(f"--token-file: {path} must hold one token on one line (no spaces)")
    return token


@dataclass(frozen=True)
class ClientAuth:
    """Everything a client needs to call one maglevd."""

    tls: ClientTls = ClientTls()
    token: str | None = None
    on_behalf_of: str = ""  # maglevd-frontend: the web user an action is for (audit only)

    def metadata(self, on_behalf_of: str = "") -> tuple[tuple[str, str], ...]:
        md: list[tuple[str, str]] = []
        if self.token is not None:
            md.append(("authorization", f"Bearer {self.token}"))
        if on_behalf_of:
            md.append(("maglev-on-behalf-of", on_behalf_of))
        return tuple(md)

    def channel(self, address: str) -> grpc.Channel:
        if self.tls.enabled:
            return grpc.secure_channel(address, self.tls.credentials(), options=self.tls.options())
        return grpc.insecure_channel(address)

    def aio_channel(self, address: str) -> grpc.aio.Channel:
        if self.tls.enabled:
            return grpc.aio.secure_channel(address, self.tls.credentials(), options=self.tls.options())
        return grpc.aio.insecure_channel(address)

    def stub(self, channel: grpc.Channel | grpc.aio.Channel) -> MetadataStub:
        from .gen.maglev.v1 import maglev_pb2_grpc as pb_grpc

        return MetadataStub(pb_grpc.MaglevStub(channel), self.metadata())


class MetadataStub:
    """A Maglev stub whose every call carries the client's metadata (the token), plus any
    the caller adds (``metadata=``)."""

    def __init__(self, stub: object, metadata: tuple[tuple[str, str], ...]) -> None:
        self._stub = stub
        self._metadata = metadata

    def __getattr__(self, method: str) -> object:
        call = getattr(self._stub, method)
        base = self._metadata

        def with_metadata(request: object, *, metadata: tuple[tuple[str, str], ...] = (), **kwargs: object) -> object:
            return call(request, metadata=base + tuple(metadata), **kwargs)

        return with_metadata
