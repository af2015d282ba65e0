"""ListFrontends as it is built: each frontend's message kept serialized by everything it
is built from (``FrontendWire``), and rebuilt when any of that changes; the same message as
building it afresh, for every kind of change (a table of steps on the pure model)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import pytest
from twisted.internet import reactor

from maglev.api import convert
from maglev.api.convert import FrontendWire, frontend_info
from maglev.api.gen.maglev.v1 import maglev_pb2 as pb
from maglev.bus import EventBus
from maglev.config import load_config
from maglev.dataplane.drain import DrainingAS
from maglev.dataplane.service import LbSync

from .test_ramp import CONFIG

FILL = convert.fill_frontend  # frontend_info's, whatever a test does to the module


class Frontends:
    """The web frontend of test_ramp's config, its model on no clock, and a FrontendWire."""

    def __init__(self) -> None:
        self.cfg = load_config(CONFIG)
        self.states = {"a": "up", "b": "up", "c": "down"}
        self.sync = LbSync(
            self.cfg, EventBus(), reactor, MappingProxyType(self.states), api_addr="", stats_addr="", api_dir=None
        )
        self.model = self.sync.model
        self.model.start_warmup(0.0)
        self.model.update_frontend_states()
        self.wire = FrontendWire()
        self.generation = 1

    def left(self, key: tuple[str, str, str]) -> float | None:
        return 30.0 if key[2] == "b" else None

    def read(self) -> tuple[pb.FrontendInfo, pb.FrontendInfo]:
        """(from the wire, built afresh)."""
        fe, desired = self.cfg.frontends["web"], self.model.desired()["web"]
        out = pb.ListFrontendsResponse()
        self.wire.add(out.frontends, fe, desired, self.sync.view, self.states, self.left, self.generation)
        fresh = pb.FrontendInfo()
        FILL(fresh, fe, desired, self.sync.view, self.states, self.left)  # not counted below
        return out.frontends[0], fresh

    def set_state(self, backend: str, state: str) -> None:
        self.states[backend] = state
        self.model.update_frontend_states()

    def ramp(self) -> None:
        self.set_state("a", "up")
        self.model.ramps.transition("a", "down", "up", 100.0, warm=True)
        self.model.ramps.tick(105.0, self.model.longest_slow_start)

    def drain(self) -> None:
        address = ipaddress.ip_address("192.0.2.9")
        self.model.drains.ases["web"] = {address: DrainingAS("web", address, "gone", "p", 1030.0, "left pool p")}

    def unsupported(self) -> None:
        self.model._unsupported["web"] = "this VPP has no such encap"  # as _check_support finds it
        self.model.update_frontend_states()


def nothing(f: Frontends) -> None:
    pass


# what, the change, whether the wire builds the message (else it merges the bytes kept)
STEPS: list[tuple[str, Callable[[Frontends], object], bool]] = [
    ("nothing changed", nothing, False),
    ("a member goes down", lambda f: f.set_state("a", "down"), True),
    ("nothing changed", nothing, False),
    ("paused by an operator", lambda f: f.set_state("b", "paused"), True),
    ("an operator weight, with time left", lambda f: f.model.set_weight("web", "p", "b", 20, flush=False), True),
    ("nothing changed, but its time left moves", nothing, True),
    ("the weight cleared", lambda f: f.model.set_weight("web", "p", "b", None, flush=False), True),
    ("nothing changed", nothing, False),
    ("a member in its slow start", lambda f: f.ramp(), True),
    ("nothing changed, but its slow start moves", nothing, True),
    ("the slow start ends", lambda f: f.model.ramps.transition("a", "up", "down", 200.0, warm=True), True),
    ("a drain", lambda f: f.drain(), True),
    ("nothing changed, but the drain's time left moves", nothing, True),
    ("the drain ends", lambda f: f.model.drains.ases.clear(), True),
    ("nothing changed", nothing, False),
    ("unsupported by this VPP", lambda f: f.unsupported(), True),
    ("nothing changed", nothing, False),
    ("a reload: a new generation", lambda f: setattr(f, "generation", 2), True),
    ("nothing changed", nothing, False),
]


def test_each_frontend_is_rebuilt_when_anything_it_shows_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    f = Frontends()
    monkeypatch.setattr(f.sync.view, "seconds", lambda: 1000.0)  # a drain's time left, the same for both
    built: list[str] = []

    def counted(info: pb.FrontendInfo, fe: Any, *rest: Any) -> None:
        built.append(fe.name)
        FILL(info, fe, *rest)

    got, fresh = f.read()
    fe, desired = f.cfg.frontends["web"], f.model.desired()["web"]
    assert got == fresh == frontend_info(fe, desired, f.sync.view, f.states, f.left) and len(f.wire) == 1
    monkeypatch.setattr(convert, "fill_frontend", counted)
    shown = [got]
    for what, change, builds in STEPS:
        change(f)
        del built[:]
        got, fresh = f.read()
        assert got == fresh, what
        assert built == (["web"] if builds else []), what
        shown.append(got)
    members = [(m.state, m.weight, m.weight_override, m.slow_start_elapsed) for s in shown for m in s.pools[0].backends]
    assert ("down", 100, False, 0) in members and ("paused", 20, True, 0) in members
    assert any(s.draining and s.draining[0].seconds_left == 30.0 for s in shown)
    assert any(s.state == "unsupported" for s in shown)
    assert any(m[3] == 5 for m in members), "a slow start shows"
