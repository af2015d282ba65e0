"""Fast decoding of fixed-size messages, compiled from the same API JSON files.

vpp_papi's serializer walks each message field by field in Python; for the
emulator that was most of its CPU per request. Every message whose layout is
fixed (no variable-length arrays or strings) gets one ``struct.Struct`` built
from its JSON definition and a decoder that rebuilds the same nested shape as
``VPPMessage.unpack(data, ntc=True)`` (namedtuples with the JSON field names;
unions carry every member). Other messages fall back to vpp_papi.
"""

from __future__ import annotations

import functools
import json
from collections import namedtuple
from collections.abc import Callable
from pathlib import Path
from struct import Struct
from typing import Any

# f64 travels little-endian (vpp_papi packs '<d'): messages with one fall back to vpp_papi.
SCALARS = {"u8": "B", "i8": "b", "u16": "H", "i16": "h", "u32": "I", "i32": "i", "u64": "Q", "i64": "q", "bool": "?"}


class NotFixed(Exception):
    pass


class Definitions:
    """Types, unions, aliases and enums of all API files, by vl_api name."""

    def __init__(self, files: list[Path]) -> None:
        self.types: dict[str, list[Any]] = {}
        self.unions: dict[str, list[Any]] = {}
        self.aliases: dict[str, dict[str, Any]] = {}
        self.enums: dict[str, str] = {}
        self.messages: dict[str, list[Any]] = {}
        for path in files:
            api = json.loads(path.read_text())
            for t in api.get("types", []):
                self.types[f"vl_api_{t[0]}_t"] = t[1:]
            for u in api.get("unions", []):
                self.unions[f"vl_api_{u[0]}_t"] = u[1:]
            for name, alias in api.get("aliases", {}).items():
                self.aliases[f"vl_api_{name}_t"] = alias
            for kind in ("enums", "enumflags"):
                for e in api.get(kind, []):
                    size = next((x["enumtype"] for x in e[1:] if isinstance(x, dict) and "enumtype" in x), "u32")
                    self.enums[f"vl_api_{e[0]}_t"] = size
            for m in api.get("messages", []):
                self.messages[m[0]] = m[1:]


def _fields(defn: list[Any]) -> list[list[Any]]:
    return [f for f in defn if isinstance(f, list)]


class Compiler:
    """Turns a JSON layout into a struct format and one generated Python expression
    that rebuilds the nested namedtuples from the flat unpacked tuple."""

    def __init__(self, defs: Definitions) -> None:
        self.defs = defs
        self.namespace: dict[str, Any] = {}
        self._tuples: dict[str, Any] = {}
        self.index = 0

    def _name(self, obj: Any) -> str:
        key = f"_o{len(self.namespace)}"
        self.namespace[key] = obj
        return key

    def _take(self) -> str:
        self.index += 1
        return f"t[{self.index - 1}]"

    def field(self, ftype: str, length: int | None) -> tuple[str, str]:
        """Struct format and expression for one field (with an optional fixed array length)."""
        if length is not None:
            if ftype == "u8":
                return f"{length}s", self._take()
            if ftype == "string":
                return f"{length}s", f"_cstr({self._take()})"
            parts = [self.field(ftype, None) for _ in range(length)]
            return "".join(p[0] for p in parts), "[" + ", ".join(p[1] for p in parts) + "]"
        if ftype in SCALARS:
            return SCALARS[ftype], self._take()
        if ftype in self.defs.enums:
            return SCALARS[self.defs.enums[ftype]], self._take()
        if ftype in self.defs.aliases:
            alias = self.defs.aliases[ftype]
            return self.field(alias["type"], alias.get("length"))
        if ftype in self.defs.types:
            return self.record(ftype, _fields(self.defs.types[ftype]))
        if ftype in self.defs.unions:
            return self.union(ftype)
        raise NotFixed(ftype)

    def record(self, name: str, fields: list[list[Any]]) -> tuple[str, str]:
        fmt, exprs, names = "", [], []
        for f in fields:
            if len(f) > 3 or (len(f) > 2 and isinstance(f[2], int) and f[2] == 0):
                raise NotFixed(f"{name}.{f[1]}")  # variable-length array
            length = f[2] if len(f) > 2 and isinstance(f[2], int) else None
            ffmt, expr = self.field(f[0], length)
            fmt += ffmt
            exprs.append(expr)
            names.append(f[1])
        cls = self._tuples.get(name)
        if cls is None:
            cls = self._tuples[name] = namedtuple(name, names, rename=True)
        return fmt, f"{self._name(cls)}({', '.join(exprs)})"

    def union(self, name: str) -> tuple[str, str]:
        members = _fields(self.defs.unions[name])
        sub = Compiler(self.defs)
        decoders = []
        for m in members:
            sub.index = 0
            fmt, expr = sub.field(m[0], m[2] if len(m) > 2 and isinstance(m[2], int) else None)
            decoders.append((Struct(">" + fmt), eval(f"lambda t: {expr}", {**sub.namespace, "_cstr": _cstr})))
        size = max(d[0].size for d in decoders)
        cls = namedtuple(name, [m[1] for m in members])  # type: ignore[misc]

        @functools.lru_cache(maxsize=8192)  # addresses repeat: decode each one once
        def decode(raw: bytes) -> Any:
            return cls(*[build(st.unpack_from(raw)) for st, build in decoders])

        return f"{size}s", f"{self._name(decode)}({self._take()})"


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace")


class FastDecoder:
    def __init__(self, name: str, fmt: str, build: Callable[[tuple[Any, ...]], Any]) -> None:
        self.name = name
        self.struct = Struct(">" + fmt)
        self.build = build

    def unpack(self, data: bytes) -> Any:
        return self.build(self.struct.unpack_from(data))


def compile_decoders(files: list[Path], names: list[str]) -> dict[str, FastDecoder]:
    """Decoders for every message in ``names`` whose layout is fixed."""
    defs = Definitions(files)
    out: dict[str, FastDecoder] = {}
    for name in names:
        if name not in defs.messages:
            continue
        compiler = Compiler(defs)
        try:
            fmt, expr = compiler.record(name, _fields(defs.messages[name]))
        except NotFixed:
            continue
        # The expression only names the namedtuple classes and union decoders built above.
        build = eval(f"lambda t: {expr}", {**compiler.namespace, "_cstr": _cstr})
        out[name] = FastDecoder(name, fmt, build)
    return out


class FastEncoder:
    """Packs a nested dict of raw values (unions as bytes, enums as ints) with one struct call."""

    def __init__(self, name: str, fmt: str, flatten: Callable[[dict[str, Any]], tuple[Any, ...]]) -> None:
        self.name = name
        self.struct = Struct(">" + fmt)
        self.flatten = flatten

    def pack(self, fields: dict[str, Any]) -> bytes:
        return self.struct.pack(*self.flatten(fields))


class _Flattener:
    def __init__(self, defs: Definitions) -> None:
        self.defs = defs

    def field(self, ftype: str, length: int | None, ref: str) -> tuple[str, list[str]]:
        if length is not None:
            if ftype in ("u8", "string"):
                return f"{length}s", [ref]
            raise NotFixed(ftype)
        if ftype in SCALARS:
            return SCALARS[ftype], [ref]
        if ftype in self.defs.enums:
            return SCALARS[self.defs.enums[ftype]], [ref]
        if ftype in self.defs.aliases:
            alias = self.defs.aliases[ftype]
            return self.field(alias["type"], alias.get("length"), ref)
        if ftype in self.defs.types:
            return self.record(_fields(self.defs.types[ftype]), ref)
        if ftype in self.defs.unions:
            sizes = []
            for m in _fields(self.defs.unions[ftype]):
                fmt, _ = self.field(m[0], m[2] if len(m) > 2 and isinstance(m[2], int) else None, "x")
                sizes.append(Struct(">" + fmt).size)
            return f"{max(sizes)}s", [ref]
        raise NotFixed(ftype)

    def record(self, fields: list[list[Any]], ref: str) -> tuple[str, list[str]]:
        fmt, refs = "", []
        for f in fields:
            if len(f) > 3 or (len(f) > 2 and isinstance(f[2], int) and f[2] == 0):
                raise NotFixed(f[1])
            length = f[2] if len(f) > 2 and isinstance(f[2], int) else None
            ffmt, frefs = self.field(f[0], length, f"{ref}[{f[1]!r}]")
            fmt += ffmt
            refs += frefs
        return fmt, refs


def compile_encoders(files: list[Path], names: list[str]) -> dict[str, FastEncoder]:
    """Encoders for fixed-size messages: ``pack({'_vl_msg_id': .., 'context': .., ...})``."""
    defs = Definitions(files)
    flattener = _Flattener(defs)
    out: dict[str, FastEncoder] = {}
    for name in names:
        if name not in defs.messages:
            continue
        try:
            fmt, refs = flattener.record(_fields(defs.messages[name]), "d")
        except NotFixed:
            continue
        flatten = eval(f"lambda d: ({', '.join(refs)},)")
        out[name] = FastEncoder(name, fmt, flatten)
    return out
