"""Generate maglev/vppapi/definitions.json, the VPP API facts the project uses (``make vpp-api``).

VPP installs its API definitions (``/usr/share/vpp/api``); a machine without VPP (a
laptop, CI, a dry run with the emulator) has none, so the package carries the part
the project speaks: the messages maglevd sends and the emulator answers, with their
names, CRCs, fields and the types those fields need. Nothing else: no comments, no
help texts, no messages we never send.

The inputs are directories of VPP's generated ``*.api.json`` files (``--from``,
repeatable, default the checkout's ``../shared/vpp-api``). The output is deterministic,
so a test can regenerate it and compare with the committed file. memclnt is kept whole:
VPP numbers its messages from 1 in file order, and clients hard-code ``sockclnt_create``
as 15.

``../shared/vpp-api`` has no ip.api.json (``ip_route_lookup``, for the route counters).
Its entry was made from FDio/vpp at the same commit (b575ec2c56d) by VPP's own
generator, which reproduces ../shared's lb, memclnt, vpe and interface files byte for
byte; in an FDio/vpp checkout (ply installed)::

    cd src && python3 tools/vppapigen/vppapigen.py --includedir . --input vnet/ip/ip.api \
        --outputdir OUT/core --output OUT/core/ip.api.json JSON --pluginpath tools/vppapigen

then ``python -m maglev.vppapi.generate --from ../shared/vpp-api --from OUT``. A
regeneration from ../shared alone keeps that entry as it is.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT.parent / "shared" / "vpp-api"
OUT = Path(__file__).resolve().parent / "definitions.json"

# Per file: the requests the project uses (each one's reply or details come with it,
# named by the file's services), or "*" for all of the file's messages.
USED: dict[str, tuple[str, ...]] = {
    "core/memclnt.api.json": ("*",),
    "core/vlib.api.json": ("cli_inband", "show_threads"),
    "core/vpe.api.json": ("show_version",),
    "core/ip.api.json": ("ip_route_lookup",),  # the VIP's FIB entry: its route counters' index
    "plugins/lb.api.json": ("*",),
}
KINDS = ("enums", "enumflags", "unions", "types")
TYPE_NAME = re.compile(r"^vl_api_(.+)_t$")
KEPT_OPTIONS = ("deprecated", "in_progress")  # facts about a message; vat_help and the like are not


def _referenced(fields: list[Any]) -> set[str]:
    names = set()
    for field in fields:
        if isinstance(field, list) and field and isinstance(field[0], str):
            m = TYPE_NAME.match(field[0])
            if m:
                names.add(m.group(1))
    return names


def _facts(body: list[Any]) -> list[Any]:
    """A definition's body without its comment (an enum's trailing ``{"enumtype": ...}`` stays)."""
    out = []
    for part in body:
        if isinstance(part, dict):
            part = {k: v for k, v in part.items() if k != "comment"}
            if not part:
                continue
        out.append(part)
    return out


def _closure(api: dict[str, Any], wanted: set[str]) -> set[str]:
    """Every type, enum, union and alias the ``wanted`` names need, within one file."""
    defs: dict[str, list[Any]] = {t[0]: t[1:] for kind in KINDS for t in api.get(kind, [])}
    aliases: dict[str, dict[str, Any]] = api.get("aliases", {})
    seen: set[str] = set()
    todo = list(wanted)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in defs:
            todo.extend(_referenced(defs[name]))
        elif name in aliases:
            todo.extend(_referenced([[aliases[name]["type"]]]))
        else:
            raise ValueError(f"{api.get('module')}: type {name} is not defined in the file")
    return seen


def _file(path: str, api: dict[str, Any], used: tuple[str, ...]) -> dict[str, Any]:
    services: dict[str, dict[str, Any]] = api.get("services", {})
    names = [m[0] for m in api["messages"]]
    if used == ("*",):
        keep = set(names)
    else:
        keep = set()
        for request in used:
            if request not in names:
                raise ValueError(f"{path}: has no message {request}")
            keep.add(request)
            reply = services.get(request, {}).get("reply")
            if reply and reply != "null":
                keep.add(reply)
    messages = []
    needed: set[str] = set()
    for m in api["messages"]:
        if m[0] not in keep:
            continue
        *fields, meta = m[1:]
        needed |= _referenced(fields)
        options = {k: v for k, v in meta.get("options", {}).items() if k in KEPT_OPTIONS}
        entry: dict[str, Any] = {"name": m[0], "crc": meta["crc"], "fields": fields}
        if options:
            entry["options"] = options
        messages.append(entry)
    types = _closure(api, needed)
    out: dict[str, Any] = {
        "path": path,
        "module": api["module"],
        "version": api.get("options", {}).get("version", ""),
        "vl_api_version": api.get("vl_api_version", ""),
        "messages": messages,
        "services": {k: v for k, v in sorted(services.items()) if k in keep},
    }
    for kind in KINDS:
        seen: set[str] = set()  # vppapigen repeats a type once per import that brings it
        out[kind] = []
        for t in api.get(kind, []):
            if t[0] in types and t[0] not in seen:
                seen.add(t[0])
                out[kind].append({"name": t[0], "body": _facts(t[1:])})
    out["aliases"] = {k: v for k, v in sorted(api.get("aliases", {}).items()) if k in types}
    return out


def _origin(source: Path) -> str:
    """What a source directory says it was made from (its README's ``Source:`` line)."""
    readme = source / "README.md"
    if readme.is_file():
        for line in readme.read_text().splitlines():
            if line.startswith("Source:"):
                return line.removeprefix("Source:").strip()
    return str(source)


def generate(sources: list[Path] | None = None, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """Each used file from the first source directory that has it; a file none has is kept
    as ``previous`` (the committed output) carries it, so regenerating from ../shared alone
    keeps what came from elsewhere (ip.api.json: see the module's notes)."""
    for d in sources or [SOURCE]:
        if not d.is_dir():
            raise ValueError(f"{d}: no such directory")
    kept = {f["path"]: f for f in (previous or {}).get("files", [])}
    files = []
    for path, used in USED.items():
        source = next((d for d in sources or [SOURCE] if (d / path).is_file()), None)
        if source is None:
            if path not in kept:
                raise ValueError(f"no source has {path}; give one with --from")
            files.append(kept[path])
            continue
        with open(source / path) as f:
            entry = _file(path, json.load(f), used)
        files.append({"path": path, "source": _origin(source), **{k: v for k, v in entry.items() if k != "path"}})
    return {"generator": "python -m maglev.vppapi.generate", "files": files}


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m maglev.vppapi.generate", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--from", dest="sources", type=Path, action="append", help="VPP's *.api.json directory (repeatable)"
    )
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--check", action="store_true", help="exit 1 when the output is not up to date")
    args = parser.parse_args(argv)
    try:
        previous = json.loads(args.out.read_text()) if args.out.is_file() else None
        text = render(generate(args.sources or [SOURCE], previous))
    except (OSError, ValueError, KeyError) as e:
        print(f"vpp-api: {e}", file=sys.stderr)
        return 2
    if args.check:
        current = args.out.read_text() if args.out.is_file() else ""
        if current != text:
            print(f"vpp-api: {args.out} is out of date; run make vpp-api", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
