"""Parsing VPP's ``show lb vips verbose`` output. Pure.

The binary API's dumps lack what only the CLI prints (each VIP's index in the stats
counters, src_ip_sticky, the new-flow table size), so the sync reads both and joins
them on the VIP's key.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from .desired import IPAddress

_VIP_LINE = re.compile(r"^\s*\S+ \[(\d+)\] (\S+)/(\d+)(.*)$")
_NEW_SIZE = re.compile(r"new_size:(\d+)")
_PROTO_PORT = re.compile(r"protocol:(\d+) port:(\d+)")


def parse_vips_verbose(text: str) -> dict[tuple[IPAddress, int | None, int], tuple[int, bool, int | None]]:
    """``show lb vips verbose``: (address, protocol, port) -> (VIP index, src_ip_sticky, new_size)."""
    out: dict[tuple[IPAddress, int | None, int], tuple[int, bool, int | None]] = {}
    current: list[Any] | None = None
    for line in text.splitlines():
        m = _VIP_LINE.match(line)
        if m:
            current = [int(m.group(1)), ipaddress.ip_address(m.group(2)), "src_ip_sticky" in m.group(4), None]
            continue
        if current is None:
            continue
        size = _NEW_SIZE.search(line)
        if size:
            current[3] = int(size.group(1))
        pp = _PROTO_PORT.search(line)
        if pp:
            protocol, port = int(pp.group(1)), int(pp.group(2))
            value = (current[0], current[2], current[3])
            out[(current[1], protocol, port)] = value
            out.setdefault((current[1], None, port), value)
    return out


__all__ = ["parse_vips_verbose"]
