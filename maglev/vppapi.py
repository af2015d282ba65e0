"""VPP API facts shared by the client and the emulator: where the API definitions (JSON) are
(/usr/share/vpp/api on a VPP host, else a checkout's ../shared/vpp-api) and the names of the
lb plugin's return values."""

from __future__ import annotations

from pathlib import Path

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
    return [Path("/usr/share/vpp/api"), here.parents[2] / "shared" / "vpp-api", here.parents[1] / "shared" / "vpp-api"]


def find_api_dir(explicit: str | None = None) -> Path:
    candidates = [Path(explicit)] if explicit else default_api_dirs()
    for d in candidates:
        if d.is_dir() and any(d.rglob("memclnt.api.json")):
            return d
    tried = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"no VPP API definitions (memclnt.api.json) in {tried}; use --vpp-api-dir")
