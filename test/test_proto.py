"""The committed gRPC stubs are what `make proto` generates from proto/."""

from __future__ import annotations

from pathlib import Path

from maglev.api import codegen


def test_generated_stubs_are_current(tmp_path: Path) -> None:
    fresh = codegen.generate(tmp_path)
    committed = codegen.OUT
    names = sorted(str(p.relative_to(tmp_path)) for p in fresh)
    assert names == sorted(
        str(p.relative_to(committed)) for p in committed.rglob("*") if p.is_file() and p.suffix in (".py", ".pyi")
    )
    for path in fresh:
        rel = path.relative_to(tmp_path)
        assert (committed / rel).read_text() == path.read_text(), f"{rel} is stale: run make proto"
