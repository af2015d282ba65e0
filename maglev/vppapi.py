"""Where VPP's API definitions (JSON) are: /usr/share/vpp/api on a VPP host, else a checkout's ../shared/vpp-api."""

from __future__ import annotations

from pathlib import Path


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
