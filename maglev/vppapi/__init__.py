"""VPP binary-API facts shared by maglevd and the emulator.

One home for what both sides of the API socket must agree on: where the API
definitions (JSON) are (/usr/share/vpp/api on a VPP host, else a checkout's
../shared/vpp-api), the socket transport's frame header, the names of the lb
plugin's return values (here); the message table as VPP numbers it
(``messages``); the compiled fixed-layout codecs (``codec``). Pure: no
Twisted, no grpc, no sockets.
"""

from __future__ import annotations

import struct
from pathlib import Path

# The socket transport's frame header: 8 bytes of zero (a queue id), the length, 0.
FRAME = struct.Struct(">QII")

# The retvals the lb plugin's handlers return (src/vnet/error.h)
RETVAL_NAMES = {
    -2: "INVALID_SW_IF_INDEX",
    -6: "NO_SUCH_ENTRY",
    -7: "INVALID_VALUE",
    -9: "UNIMPLEMENTED",
    -70: "INVALID_MEMORY_SIZE",
    -73: "INVALID_ARGUMENT",
    -81: "VALUE_EXIST",
    -97: "INVALID_ADDRESS_FAMILY",
}


def default_api_dirs() -> list[Path]:
    here = Path(__file__).resolve()
    return [Path("/usr/share/vpp/api"), here.parents[3] / "shared" / "vpp-api", here.parents[2] / "shared" / "vpp-api"]


def find_api_dir(explicit: str | None = None, option: str = "--vpp-api-dir") -> Path:
    """The directory of VPP's API definitions; ``option`` is the caller's flag for naming one."""
    candidates = [Path(explicit)] if explicit else default_api_dirs()
    for d in candidates:
        if d.is_dir() and any(d.rglob("memclnt.api.json")):
            return d
    tried = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"no VPP API definitions (memclnt.api.json) in {tried}; use {option}")
