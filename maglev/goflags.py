"""The original's command lines, as written: Go-style single-dash long flags. Pure.

Go's flag package takes ``-name``, ``-name value``, ``-name=value`` and ``--name`` alike, and
booleans as ``-name``, ``-name=true`` or ``-name=false``. The programs here parse GNU-style
long options, so a command line is rewritten first: a single-dash token naming one of the
program's long options gets its second dash; a boolean given ``=true`` is the bare flag and
``=false`` is dropped (it is off unless given). Single-letter short options (``-c FILE``)
and everything after ``--`` are left alone.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

TRUE = {"true", "1", "t", "yes"}
FALSE = {"false", "0", "f", "no"}


def go_style(argv: Sequence[str], parameters: Collection[str], flags: Collection[str] = ()) -> list[str]:
    """``argv`` with Go-style spellings of the long options rewritten (see the module)."""
    out: list[str] = []
    rest = iter(argv)
    for token in rest:
        if token == "--":
            out.append(token)
            out.extend(rest)
            break
        name, eq, value = token.lstrip("-").partition("=")
        dashes = len(token) - len(token.lstrip("-"))
        if dashes not in (1, 2) or (name not in parameters and name not in flags) or len(name) < 2:
            out.append(token)
            continue
        if name in flags and eq:
            if value.lower() in FALSE:
                continue
            if value.lower() in TRUE:
                out.append(f"--{name}")
                continue
        out.append(f"--{name}{eq}{value}")
    return out


def add_both_forms(parser: argparse.ArgumentParser, primary: str = "--") -> Callable[..., None]:
    """``add(name, **kw)`` for an argparse parser: the option as ``-name`` and ``--name``,
    ``primary`` first (the form help and usage show)."""
    other = "-" if primary == "--" else "--"

    def add(name: str, **kw: Any) -> None:
        parser.add_argument(f"{primary}{name}", f"{other}{name}", **kw)

    return add


def env_defaults(
    environ: Mapping[str, str], prefix: str, parameters: Collection[str], flags: Collection[str] = ()
) -> dict[str, object]:
    """argparse defaults from ``PREFIX_NAME`` variables (``-gc-interval`` reads
    ``PREFIX_GC_INTERVAL``), for ``set_defaults``: the flag, when given, still wins.
    A boolean's variable is true or false; anything else is a ValueError naming it."""
    out: dict[str, object] = {}
    for name in (*parameters, *flags):
        var = f"{prefix}_{name.upper().replace('-', '_')}"
        if var not in environ:
            continue
        value = environ[var]
        if name in flags:
            if value.lower() not in TRUE | FALSE:
                raise ValueError(f"{var}: expected true or false, got {value!r}")
            out[name.replace("-", "_")] = value.lower() in TRUE
        else:
            out[name.replace("-", "_")] = value
    return out


__all__ = ["add_both_forms", "env_defaults", "go_style"]
