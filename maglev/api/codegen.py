"""Generate maglev/api/gen/ from proto/maglev/v1/maglev.proto (``make proto``).

The output is deterministic, so a test can regenerate into a temporary
directory and compare with the committed files.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTO = ROOT / "proto"
OUT = ROOT / "maglev" / "api" / "gen"


def generate(out: Path = OUT) -> list[Path]:
    from grpc_tools import protoc

    out.mkdir(parents=True, exist_ok=True)
    target = out / "maglev" / "v1"
    target.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        str(PROTO / "maglev" / "v1" / "maglev.proto"),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for d in (out, out / "maglev", target):
        (d / "__init__.py").touch()
    # grpc_tools writes absolute imports ("from maglev.v1 import ..."); make them package-relative.
    grpc_file = target / "maglev_pb2_grpc.py"
    text = grpc_file.read_text().replace("from maglev.v1 import maglev_pb2", "from . import maglev_pb2")
    grpc_file.write_text(text)
    return sorted(p for p in out.rglob("*") if p.is_file() and p.suffix in (".py", ".pyi"))


if __name__ == "__main__":
    for path in generate():
        print(path.relative_to(ROOT))
    sys.exit(0)
