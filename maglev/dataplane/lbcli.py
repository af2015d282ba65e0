"""Parsing VPP's ``show lb vips verbose`` output, both generations. Pure.

The binary API's dumps lack what only the CLI prints: each VIP's index in the stats
counters, src_ip_sticky, the exact new-flow table size, dscp and the NAT arguments as
stored; and on releases up to 26.06 the dumps carry protocol 0, so the CLI's
``protocol:17 port:53`` is the only place VPP says which VIP is which. The formats
(``../shared/spec/vpp-cli/``, verbatim from real VPP):

    ip4-gre4 [1] 192.0.2.10/32[ src_ip_sticky][ removed]
      new_size:1024
      protocol:6 port:80                 (absent for all-port VIPs)
      dscp:10                            (l3dsr)
      type:clusterip port:36895 target_port:8081  counters:   (nat, no newline)
      counters:
        packet from existing sessions: 0 (four lines)
      #as:3                              (removed ASes counted too)
        ADDR weight:W buckets:B flows:F dpo:D used|  removed       (master)
        ADDR B buckets   F flows  dpo:D used|  removed             (26.06)
    (a blank line)

A line that fits none of these raises CliFormatError naming it and its number.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from functools import lru_cache

from .desired import IPAddress, NatArgs

_HEADER = re.compile(r"^ (\S+) \[(\d+)\] (\S+)/(\d+)( src_ip_sticky)?( removed)?$")
_NEW_SIZE = re.compile(r"^  new_size:(\d+)$")
_PROTO_PORT = re.compile(r"^  protocol:(\d+) port:(\d+)$")
_DSCP = re.compile(r"^  dscp:(\d+)$")
_NAT = re.compile(r"^  type:(clusterip|nodeport) port:(\d+) target_port:(\d+)(  counters:)?$")
_COUNTERS = re.compile(r"^  counters:$")
_COUNTER = re.compile(r"^    ([a-z][a-z ]*): (\d+)$")
_AS_COUNT = re.compile(r"^  #as:(\d+)$")
_AS_MASTER = re.compile(r"^    (\S+) weight:(\d+) buckets:(\d+) flows:(\d+) dpo:(\d+) (used| removed)$")
_AS_2606 = re.compile(r"^    (\S+) (\d+) buckets   (\d+) flows  dpo:(\d+) (used| removed)$")


class CliFormatError(ValueError):
    """VPP's CLI printed something this parser does not know: the line and its number."""


@dataclass(frozen=True)
class CliAS:
    address: IPAddress
    weight: int | None  # None: this VPP has no weights (26.06)
    buckets: int
    flows: int
    used: bool


@dataclass
class CliVip:
    index: int  # the VIP's pool index: its column in the stats counters
    type: str  # VPP's internal VIP type name, e.g. "ip4-gre4"
    address: IPAddress
    plen: int
    src_ip_sticky: bool
    removed: bool  # deleted, still listed until garbage collection
    new_size: int = 0
    protocol: int = 255  # no protocol line: an all-port VIP
    port: int = 0
    dscp: int | None = None
    nat: NatArgs | None = None
    counters: dict[str, int] = field(default_factory=dict)
    as_count: int = 0
    ases: list[CliAS] = field(default_factory=list)

    @property
    def key(self) -> tuple[IPAddress, int, int]:
        return self.address, self.protocol, self.port


def parse_vips_verbose(text: str) -> list[CliVip]:
    """Every VIP block of ``show lb vips verbose``, in VPP's order (removed ones included)."""
    vips: list[CliVip] = []
    current: CliVip | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            current = None  # a block ends with a blank line
            continue
        m = _HEADER.match(line)
        if m is not None:
            current = CliVip(
                index=int(m.group(2)),
                type=m.group(1),
                address=_address(m.group(3), number, line),
                plen=int(m.group(4)),
                src_ip_sticky=m.group(5) is not None,
                removed=m.group(6) is not None,
            )
            vips.append(current)
            continue
        if current is None:
            raise CliFormatError(f"line {number} is outside a VIP block: {line!r}")
        _field(current, line, number)
    return vips


def _field(vip: CliVip, line: str, number: int) -> None:
    if m := _AS_MASTER.match(line):
        vip.ases.append(
            CliAS(_address(m.group(1), number, line), int(m.group(2)), int(m.group(3)), int(m.group(4)),
                  m.group(6) == "used")
        )  # fmt: skip
    elif m := _AS_2606.match(line):
        address = _address(m.group(1), number, line)
        vip.ases.append(CliAS(address, None, int(m.group(2)), int(m.group(3)), m.group(5) == "used"))
    elif m := _COUNTER.match(line):
        vip.counters[m.group(1)] = int(m.group(2))
    elif m := _NEW_SIZE.match(line):
        vip.new_size = int(m.group(1))
    elif m := _PROTO_PORT.match(line):
        vip.protocol, vip.port = int(m.group(1)), int(m.group(2))
    elif m := _DSCP.match(line):
        vip.dscp = int(m.group(1))
    elif m := _NAT.match(line):
        vip.nat = NatArgs(m.group(1), int(m.group(3)))
    elif m := _AS_COUNT.match(line):
        vip.as_count = int(m.group(1))
    elif not _COUNTERS.match(line):
        raise CliFormatError(f"line {number} of VIP [{vip.index}] is not a known field: {line!r}")


def _address(text: str, number: int, line: str) -> IPAddress:
    try:
        return _parsed(text)
    except ValueError:
        raise CliFormatError(f"line {number}: {text!r} is not an address: {line!r}") from None


@lru_cache(maxsize=1 << 17)
def _parsed(text: str) -> IPAddress:
    """Every full sync reads the same addresses again: ipaddress parses one in about 2.5 us
    of Python, on the VPP thread, which holds the GIL from the reactor meanwhile. Kept: as
    many as a large deployment has ASes (about 230 bytes each)."""
    return ipaddress.ip_address(text)


__all__ = ["CliAS", "CliFormatError", "CliVip", "NatArgs", "parse_vips_verbose"]
