"""Fixtures shared by the dataplane tests: an emulator of each VPP generation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maglev.vppemu.server import Emulator

from .emu import API_DIR


@pytest.fixture(params=["master", "v26.06"])
def flavour(request: Any) -> str:
    """Both VPP generations (a test narrows it with ``@pytest.mark.parametrize("flavour", ...)``)."""
    return str(request.param)


@pytest.fixture
def emu(tmp_path: Path, flavour: str) -> Iterator[Emulator]:
    """An in-process emulator of ``flavour`` (GC every second), serving for the test."""
    e = Emulator(str(tmp_path / "api.sock"), str(tmp_path / "stats.sock"), str(API_DIR), flavour, gc_interval=1.0)
    e.start()
    yield e
    e.stop()
