"""Test fixtures: an in-process VPP emulator and a real vpp_papi client connected to it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vpp_papi import VPPApiClient

from maglev.vppemu.server import Emulator

from .helpers import ROOT

API_DIR = ROOT.parent / "shared" / "vpp-api"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextmanager
def emulator(tmp: Path, flavour: str = "master", gc_interval: float = 60.0) -> Iterator[tuple[Emulator, FakeClock]]:
    clock = FakeClock()
    emu = Emulator(str(tmp / "api.sock"), str(tmp / "stats.sock"), str(API_DIR), flavour, gc_interval, clock=clock)
    emu.start()
    try:
        yield emu, clock
    finally:
        emu.stop()


@contextmanager
def client(emu: Emulator, name: str = "test") -> Iterator[Any]:
    c = VPPApiClient(apidir=str(API_DIR), server_address=emu.api_socket, read_timeout=5)
    c.connect(name)
    try:
        yield c
    finally:
        c.disconnect()
