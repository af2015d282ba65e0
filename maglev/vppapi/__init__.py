"""VPP binary-API facts shared by maglevd and the emulator.

One home for what both sides of the API socket must agree on: where the API
definitions (JSON) are (/usr/share/vpp/api on a VPP host, else the part the
project uses, carried as package data: ``definitions.json``, made by
``generate``), the socket transport's frame header, the names of the lb
plugin's return values (here); the message table as VPP numbers it
(``messages``); the compiled fixed-layout codecs (``codec``). Pure: no
Twisted, no grpc, no sockets.
"""

from __future__ import annotations

import atexit
import json
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Any

# The socket transport's frame header: 8 bytes of zero (a queue id), the length, 0.
FRAME = struct.Struct(">QII")

# The retvals the lb plugin's handlers return (src/vnet/error.h)
RETVAL_NAMES = {
    -2: "INVALID_SW_IF_INDEX",
    -3: "NO_SUCH_FIB",
    -6: "NO_SUCH_ENTRY",
    -7: "INVALID_VALUE",
    -9: "UNIMPLEMENTED",
    -70: "INVALID_MEMORY_SIZE",
    -73: "INVALID_ARGUMENT",
    -81: "VALUE_EXIST",
    -97: "INVALID_ADDRESS_FAMILY",
}


INSTALLED = Path("/usr/share/vpp/api")
PACKAGED = Path(__file__).resolve().parent / "definitions.json"
_materialized: Path | None = None


def vpp_json(entry: dict[str, Any]) -> dict[str, Any]:
    """One file of ``definitions.json`` in the form VPP's vppapigen writes (what vpp_papi reads)."""

    def body(kind: str) -> list[list[Any]]:
        return [[t["name"], *t["body"]] for t in entry[kind]]

    return {
        "module": entry["module"],
        "types": body("types"),
        "messages": [
            [m["name"], *m["fields"], {"crc": m["crc"], "options": m.get("options", {})}] for m in entry["messages"]
        ],
        "unions": body("unions"),
        "enums": body("enums"),
        "enumflags": body("enumflags"),
        "services": entry["services"],
        "options": {"version": entry["version"]},
        "aliases": entry["aliases"],
        "vl_api_version": entry["vl_api_version"],
        "imports": [],
        "counters": [],
        "paths": [],
    }


def packaged_api_dir() -> Path:
    """The packaged definitions as a directory of ``*.api.json`` files, made once per process.

    vpp_papi reads only such a directory; it lives in a private temporary directory,
    removed when the process exits.
    """
    global _materialized
    if _materialized is not None and _has_definitions(_materialized):
        return _materialized
    doc = json.loads(PACKAGED.read_text())
    target = Path(tempfile.mkdtemp(prefix="vpp-maglev-api-"))
    atexit.register(shutil.rmtree, target, True)
    for entry in doc["files"]:
        path = target / entry["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(vpp_json(entry)))
    _materialized = target
    return target


def _has_definitions(d: Path) -> bool:
    return d.is_dir() and any(d.rglob("memclnt.api.json"))


def find_api_dir(explicit: str | None = None, option: str = "--vpp-api-dir") -> Path:
    """The directory of VPP's API definitions; ``option`` is the caller's flag for naming one.

    An explicit directory must hold them. Otherwise VPP's own (``/usr/share/vpp/api``)
    win where VPP is installed, and the packaged ones serve everywhere else.
    """
    if explicit:
        if _has_definitions(Path(explicit)):
            return Path(explicit)
        raise FileNotFoundError(f"no VPP API definitions (memclnt.api.json) in {explicit}; check {option}")
    if _has_definitions(INSTALLED):
        return INSTALLED
    if PACKAGED.is_file():
        return packaged_api_dir()
    raise FileNotFoundError(f"no VPP API definitions in {INSTALLED} and none packaged ({PACKAGED}); use {option}")
