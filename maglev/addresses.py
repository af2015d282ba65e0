"""Listen addresses as operators write them (``:9091``, ``127.0.0.1:8080``,
``[::1]:9090``, ``/run/maglev.sock``) and their Twisted endpoint strings."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


class AddressError(ValueError):
    pass


@dataclass(frozen=True)
class TcpAddress:
    host: str  # "" = all interfaces
    port: int

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def endpoint(self) -> str:
        """A strports description for serverFromString."""
        if not self.host:
            return f"tcp:{self.port}"
        host = "127.0.0.1" if self.host == "localhost" else self.host
        if ":" in host:
            return f"tcp6:{self.port}:interface={host.replace(':', chr(92) + ':')}"
        return f"tcp:{self.port}:interface={host}"

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class UnixAddress:
    path: str

    def __str__(self) -> str:
        return self.path


def parse_tcp(text: str) -> TcpAddress:
    s = text.strip()
    if s.startswith("["):
        host, sep, rest = s[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise AddressError(f"{text!r}: expected [IPv6]:PORT")
        port_s = rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise AddressError(f"{text!r}: {host!r} is not an IPv6 address") from None
    else:
        host, sep, port_s = s.rpartition(":")
        if not sep:
            raise AddressError(f"{text!r}: expected HOST:PORT or :PORT")
        if ":" in host:
            raise AddressError(f"{text!r}: write IPv6 addresses in brackets, e.g. [::1]:9090")
        if host and host != "localhost":
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                raise AddressError(f"{text!r}: {host!r} is not an IP address (or localhost)") from None
    if not port_s.isdigit() or not 0 <= int(port_s) <= 65535:
        raise AddressError(f"{text!r}: port must be 0..65535")
    return TcpAddress(host, int(port_s))


def parse_listen(text: str) -> TcpAddress | UnixAddress:
    """A unix socket path (absolute, or ``unix:PATH``) or a TCP address."""
    s = text.strip()
    if s.startswith("unix:"):
        s = s[5:]
        if not s.startswith("/"):
            raise AddressError(f"{text!r}: unix socket paths must be absolute")
    if s.startswith("/"):
        return UnixAddress(s)
    return parse_tcp(s)


def parse_server(text: str) -> str:
    """A gRPC server to connect to: ``HOST:PORT`` (a name, IPv4, or ``[IPv6]``), port 1..65535."""
    s = text.strip()
    host, sep, port_s = s.rpartition(":")
    if not sep or not host:
        raise AddressError(f"{text!r}: expected HOST:PORT")
    if host.startswith("["):
        if not host.endswith("]"):
            raise AddressError(f"{text!r}: expected [IPv6]:PORT")
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise AddressError(f"{text!r}: {host[1:-1]!r} is not an IPv6 address") from None
    elif ":" in host:
        raise AddressError(f"{text!r}: write IPv6 addresses in brackets, e.g. [::1]:9090")
    if not port_s.isdigit() or not 1 <= int(port_s) <= 65535:
        raise AddressError(f"{text!r}: port must be 1..65535")
    return s
