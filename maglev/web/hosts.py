"""The web UI answers only to the names it is known by: its own addresses, and the
names given with --web-allowed-hosts. A page on ``evil.example`` whose name an
attacker re-points at the router (DNS rebinding) sends ``Host: evil.example``
and ``Origin: http://evil.example``, and is refused before any route runs.

An IP literal cannot be re-pointed, so a UI bound to every address accepts any
address; one bound to an address accepts that one (and ``localhost`` for loopback).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from twisted.web.resource import IResource, Resource

from ..addresses import TcpAddress

OPEN_PATHS = {b"/healthz"}  # monitoring may use any name; it reveals nothing


def host_name(header: str) -> str:
    """``Host``'s name part: ``a.example:8080`` -> ``a.example``, ``[::1]:80`` -> ``::1``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    if header.count(":") == 1:
        return header.partition(":")[0]
    return header.rstrip(".")


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


class HostCheck:
    def __init__(self, bound: TcpAddress, extra: tuple[str, ...] = ()) -> None:
        self.bound = bound
        self.extra = frozenset(n.lower() for n in extra)

    def allows(self, header: str) -> bool:
        name = host_name(header)
        if not name:
            return False
        if name in self.extra:
            return True
        ip = _ip(name)
        host = self.bound.host
        if host in ("", "0.0.0.0", "::"):
            return ip is not None or name == "localhost"
        if host == "localhost":
            return name == "localhost" or (ip is not None and ip.is_loopback)
        bound_ip = _ip(host)
        if ip is not None and bound_ip is not None:
            return ip == bound_ip
        return name == "localhost" and bound_ip is not None and bound_ip.is_loopback

    def refusal(self, header: str) -> str:
        return (
            f"Host {header!r} is not one of this web UI's names: open it by address, or add the name with "
            "--web-allowed-hosts (MAGLEV_WEB_ALLOWED_HOSTS)\n"
        )


class HostGuard(Resource):
    """Wraps the Klein app: a request with a foreign Host never reaches a route."""

    isLeaf = True

    def __init__(self, inner: IResource, check: HostCheck) -> None:
        super().__init__()
        self.inner = inner
        self.check = check

    def render(self, request: Any) -> Any:
        header = (request.getHeader(b"host") or b"").decode("ascii", "replace")
        if request.path not in OPEN_PATHS and not self.check.allows(header):
            request.setResponseCode(403)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return self.check.refusal(header).encode()
        return self.inner.render(request)
