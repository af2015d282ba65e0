"""Real VPP's lb CLI output, verbatim (../shared/spec/vpp-cli/), as steps a test can replay.

Each file is a run on a fresh VPP: binary-API calls (``# message(args) -> retval N``) and
CLI output (``### vppctl COMMAND`` then what VPP printed, then one blank separator line).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec" / "vpp-cli"
SAMPLES = {"master": SPEC / "master-b575ec2c56d.txt", "v26.06": SPEC / "v26.06.txt"}
_CALL = re.compile(r"^# (\w+)\((.*)\) -> retval (-?\d+)$")
_DPO = re.compile(r"dpo:\d+")


@dataclass(frozen=True)
class Call:
    message: str
    args: dict[str, Any]
    retval: int


@dataclass(frozen=True)
class Shown:
    command: str
    output: str  # exactly what VPP's cli_inband answered


def steps(flavour: str) -> list[Call | Shown]:
    out: list[Call | Shown] = []
    command: str | None = None
    lines: list[str] = []

    def close() -> None:
        if command is not None:
            body = lines[:-1] if lines and lines[-1] == "" else lines  # the separator
            out.append(Shown(command, "\n".join(body) + "\n" if body else ""))

    for line in SAMPLES[flavour].read_text().splitlines():
        m = _CALL.match(line)
        if m is not None or line.startswith("### vppctl "):
            close()
            command, lines = None, []
            if m is not None:
                out.append(Call(m.group(1), _kwargs(m.group(2)), int(m.group(3))))
            else:
                command = line.removeprefix("### vppctl ")
            continue
        lines.append(line)
    close()
    return out


def _kwargs(text: str) -> dict[str, Any]:
    call = ast.parse(f"f({text})", mode="eval").body
    assert isinstance(call, ast.Call)
    return {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg is not None}


def shown(flavour: str, command: str) -> list[str]:
    """Every output of ``command`` in the run, in order."""
    return [s.output for s in steps(flavour) if isinstance(s, Shown) and s.command == command]


def without_dpo(text: str) -> str:
    """dpo numbers depend on what else a VPP holds: the one field that may differ."""
    return _DPO.sub("dpo:N", text)
