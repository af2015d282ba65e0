"""The house's floors, checked on the source: who may import whom.

Walks every module of the package with ``ast`` (nothing is imported), resolves relative
imports, and fails naming the module and the import that crosses a line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "maglev"

# The emulator is a separate program: only it and the demo (which starts it) may use it.
MAY_IMPORT_EMULATOR = ("maglev.vppemu", "maglev.demo")
# Pure cores: no reactor, no grpc, no threads of their own.
PURE = (
    "maglev.config",
    "maglev.states",
    "maglev.health.state",
    "maglev.health.exposition",
    "maglev.exposition",
    "maglev.dataplane.desired",
    "maglev.dataplane.plan",
    "maglev.dataplane.model",
    "maglev.dataplane.connection",
    "maglev.vppapi",
    "maglev.access",
    "maglev.textfile",
    "maglev.lbtable",
    "maglev.dataplane.tables",
    "maglev.dataplane.preview",
    "maglev.dataplane.rates",
    "maglev.api.paging",
    "maglev.web.export",
    "maglev.health.probes.tls",
    "maglev.health.probes.rawhttp",
)
IMPURE = ("twisted", "grpc", "klein", "threading")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[str]:
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            out.append(target)
            out.extend(f"{target}.{a.name}" for a in node.names)  # `from . import codec`
    return out


MODULES = {module_name(p): p for p in ROOT.rglob("*.py") if "/gen/" not in str(p)}


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_the_walk_sees_the_package() -> None:
    assert {"maglev.app", "maglev.dataplane.service", "maglev.vppemu.server", "maglev.vppapi.codec"} <= set(MODULES)
    assert "maglev.vppapi.codec" in imports_of(MODULES["maglev.vppemu.server"])


@pytest.mark.parametrize("name", sorted(n for n in MODULES if not within(n, MAY_IMPORT_EMULATOR)))
def test_no_product_module_imports_the_emulator(name: str) -> None:
    crossing = [i for i in imports_of(MODULES[name]) if within(i, ("maglev.vppemu",))]
    assert not crossing, f"{name} imports {crossing}: shared VPP API pieces live in maglev.vppapi"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if within(n, PURE)))
def test_pure_cores_import_no_reactor_or_grpc(name: str) -> None:
    crossing = [i for i in imports_of(MODULES[name]) if within(i, IMPURE)]
    assert not crossing, f"{name} is a pure core but imports {crossing}"


MAX_CLASS_LINES = 250


def test_no_class_does_too_many_jobs() -> None:
    """A class of more than MAX_CLASS_LINES lines has more than one job: split it."""
    long = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                lines = node.end_lineno - node.lineno + 1
                if lines >= MAX_CLASS_LINES:
                    long.append(f"{name}.{node.name}: {lines} lines")
    assert not long, long


@pytest.mark.parametrize("name", sorted(n for n in MODULES if within(n, ("maglev.dataplane",))))
def test_each_dataplane_module_names_its_thread(name: str) -> None:
    """The VPP thread and the reactor share this package: each file says where it runs."""
    doc = ast.get_docstring(ast.parse(MODULES[name].read_text())) or ""
    assert any(w in doc for w in ("Pure", "pure", "reactor thread", "VPP thread")), f"{name}: {doc[:80]!r}"
