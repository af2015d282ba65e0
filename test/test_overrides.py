"""Operator overrides with lifetimes: the pure model and its state file, the service on a
Clock (timed pause and weight ending by themselves, reloads), maglevc's grammar."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.task import Clock

from maglev.bus import EventBus
from maglev.config import load_config
from maglev.dataplane.service import LbSync
from maglev.events import OverrideExpired
from maglev.health.service import HealthService
from maglev.maglevc.tree import ParseError, parse
from maglev.overrides import Overrides, StateFileError, load_state, save_state
from maglev.overrideservice import DurationError, OverrideService

from .helpers import MINIMAL


def test_expiry_and_next_expiry() -> None:
    o = Overrides()
    o.set_backend("web0", "pause", 100.0)
    o.set_backend("web1", "disable", None)
    o.set_weight(("web", "primary", "web0"), 0, 50.0)
    assert o.next_expiry() == 50.0
    assert [w.key for w in o.expired(50.0)] == [("web", "primary", "web0")]  # type: ignore[union-attr]
    assert o.next_expiry() == 100.0 and o.expired(99.0) == []
    assert [b.backend for b in o.expired(100.0)] == ["web0"]  # type: ignore[union-attr]
    assert o.next_expiry() is None and list(o.backends) == ["web1"], "an untimed one stays"


def test_prune_drops_what_the_config_no_longer_has() -> None:
    o = Overrides()
    o.set_backend("web0", "pause", None)
    o.set_backend("gone", "disable", None)
    o.set_weight(("web", "primary", "web0"), 10, None)
    o.set_weight(("web", "primary", "web1"), 10, None)  # web1 is in fallback, not primary
    o.set_weight(("nope", "p", "web0"), 10, None)
    dropped = o.prune(load_config(MINIMAL))
    assert dropped == ["backend gone", "frontend web pool primary backend web1", "frontend nope pool p backend web0"]
    assert list(o.backends) == ["web0"] and list(o.weights) == [("web", "primary", "web0")]


def test_state_file_round_trip_and_atomic_write(tmp_path: Path) -> None:
    o = Overrides()
    o.set_backend("web0", "disable", 1234.5)
    o.set_weight(("web", "primary", "web0"), 7, None)
    path = tmp_path / "overrides.json"
    save_state(str(path), o)
    back = load_state(str(path))
    assert back.backends == o.backends and back.weights == o.weights
    assert sorted(os.listdir(tmp_path)) == ["overrides.json"], "no temporary file left"
    assert load_state(str(tmp_path / "missing.json")).backends == {}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{", "not JSON"),
        ('{"version": 2}', "not a version 1 overrides file"),
        ('{"version": 1, "backends": {"a": {"action": "explode"}}}', "action must be one of pause, disable"),
        ('{"version": 1, "weights": [{"frontend": "f", "pool": "p", "backend": "b", "weight": 900}]}', "0..100"),
        ('{"version": 1, "weights": [{"frontend": "f"}]}', "malformed entry"),
        ('{"version": 1, "backends": {"a": {"action": "pause", "until": "soon"}}}', "malformed entry"),
    ],
)
def test_a_bad_state_file_names_its_problem(text: str, problem: str) -> None:
    with pytest.raises(StateFileError, match=problem):
        Overrides.from_json(text)


class Stack:
    """Health and the overrides on one Clock with the VPP sync (VPP off), as maglevd wires them."""

    def __init__(self, state_dir: str = "") -> None:
        self.clock = Clock()
        self.clock.advance(1_000_000)
        self.bus = EventBus()
        self.cfg = load_config(MINIMAL)
        self.health = HealthService(self.cfg, self.bus, self.clock, wallclock=self.clock.seconds)
        from twisted.internet import reactor  # VPP is off: LbSync only keeps the model, no timers

        self.lbsync = LbSync(self.cfg, self.bus, reactor, self.health.view.states, "", "", None)
        self.overrides = OverrideService(self.health, self.lbsync, self.bus, self.clock, state_dir)
        self.expired: list[OverrideExpired] = []
        self.bus.subscribe(OverrideExpired, self.expired.append)
        for s in (self.health, self.overrides, self.lbsync):
            s.startService()

    def weight(self, frontend: str, pool: str, backend: str) -> int:
        return self.lbsync.view.overrides.get((frontend, pool, backend), -1)


def test_a_timed_pause_ends_by_itself_and_survives_a_reload() -> None:
    s = Stack()
    s.overrides.pause("web0", 1800)
    assert s.health.state_of("web0").value == "paused"
    assert s.overrides.of_backend("web0") == (True, 1800.0)
    s.clock.advance(600)
    s.overrides.reconfigure(s.cfg)
    s.health.reconfigure(s.cfg)
    assert s.health.state_of("web0").value == "paused" and s.overrides.of_backend("web0") == (True, 1200.0)
    s.clock.advance(1199)
    assert s.health.state_of("web0").value == "paused"
    s.clock.advance(1)
    assert s.health.state_of("web0").value == "unknown", "resumed: probed again"
    assert [(e.backend, e.action) for e in s.expired] == [("web0", "pause")]
    assert s.overrides.of_backend("web0") == (False, 0.0)


def test_a_timed_weight_goes_back_to_the_configured_one() -> None:
    s = Stack()
    s.overrides.set_weight("web", "primary", "web0", 0, False, 600).addErrback(lambda f: None)
    assert s.weight("web", "primary", "web0") == 0
    assert s.overrides.weight_seconds_left(("web", "primary", "web0")) == 600.0
    s.clock.advance(600)
    assert s.weight("web", "primary", "web0") == -1, "the config's weight again"
    assert [(e.backend, e.action, e.frontend, e.pool) for e in s.expired] == [("web0", "weight", "web", "primary")]


def test_durations_are_checked_and_nothing_changes_on_a_bad_one() -> None:
    s = Stack()
    for bad in (-1.0, float("nan"), 10 * 366 * 86400.0):
        with pytest.raises(DurationError):
            s.overrides.pause("web0", bad)
    with pytest.raises(DurationError, match="not to resume"):
        s.overrides.resume("web0", 60)
    assert s.health.state_of("web0").value == "unknown" and s.overrides.model.backends == {}


def test_the_state_file_follows_every_change(tmp_path: Path) -> None:
    s = Stack(str(tmp_path))
    s.overrides.disable("web1", 3600)
    saved = json.loads((tmp_path / "overrides.json").read_text())
    assert saved["backends"] == {"web1": {"action": "disable", "until": s.clock.seconds() + 3600}}
    s.overrides.enable("web1")
    assert json.loads((tmp_path / "overrides.json").read_text())["backends"] == {}


def test_saved_overrides_are_applied_at_start_and_bad_ones_reported(tmp_path: Path) -> None:
    first = Stack(str(tmp_path))
    first.overrides.disable("web1")
    first.overrides.set_weight("web", "primary", "web0", 5, False, 3600).addErrback(lambda f: None)
    data: dict[str, Any] = json.loads((tmp_path / "overrides.json").read_text())
    data["backends"]["gone"] = {"action": "pause", "until": None}
    (tmp_path / "overrides.json").write_text(json.dumps(data))
    again = Stack(str(tmp_path))  # a restart: the same directory
    assert again.health.state_of("web1").value == "disabled"
    assert again.weight("web", "primary", "web0") == 5
    assert "gone" not in again.overrides.model.backends
    (tmp_path / "overrides.json").write_text("{ not json")
    third = Stack(str(tmp_path))
    assert third.health.state_of("web1").value == "unknown", "a corrupt file: start with none"
    assert (tmp_path / "overrides.json.corrupt").read_text() == "{ not json", "set aside, not lost"


@pytest.mark.parametrize(
    ("line", "action", "duration"),
    [
        ("set backend web0 pause for 30m", "backend_pause", "30m"),
        ("set backend web0 disable for 2h", "backend_disable", "2h"),
        ("set backend web0 pause", "backend_pause", None),
        ("set frontend web pool primary backend web0 weight 0 for 10m", "set_weight", "10m"),
        ("set frontend web pool primary backend web0 weight 0 flush for 10m", "set_weight", "10m"),
    ],
)
def test_maglevc_for_duration(line: str, action: str, duration: str | None) -> None:
    p = parse(line.split())
    assert (p.action, p.args.get("duration")) == (action, duration)
    assert ("flush" in p.flags) == ("flush" in line)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("set backend web0 pause for soon", "'soon'"),
        ("set backend web0 pause for 0s", "more than 0"),
        ("set backend web0 resume for 1m", "unknown 'for'"),
        ("set backend web0 pause for", "incomplete"),
    ],
)
def test_maglevc_bad_durations(line: str, problem: str) -> None:
    with pytest.raises(ParseError, match=problem):
        parse(line.split())


@pytest.mark.slow
def test_overrides_survive_a_restart_of_the_daemon(tmp_path: Path) -> None:
    """A real second process with the same --state-dir; then a corrupt state file."""
    import grpc

    from maglev.api.gen.maglev.v1 import maglev_pb2 as pb
    from maglev.api.gen.maglev.v1 import maglev_pb2_grpc as pb_grpc

    from .helpers import Daemon

    cfg = tmp_path / "maglev.yaml"
    cfg.write_text(MINIMAL)
    args = ["--config", str(cfg), "--metrics-addr", "", "--vpp-api-addr", "", "--grpc-addr", "127.0.0.1:0",
            "--state-dir", str(tmp_path)]  # fmt: skip

    def logged(d: Daemon, name: str) -> dict[str, Any]:
        """Logged before gRPC listened (this service starts first), or still to come."""
        return next((r for r in d.seen if r.get("event") == name), None) or d.event(name)

    def start() -> tuple[Daemon, Any]:
        d = Daemon(args)
        address = d.event("listening", service="grpc")["address"]
        return d, grpc.insecure_channel(address)

    d, ch = start()
    try:
        stub = pb_grpc.MaglevStub(ch)
        stub.DisableBackend(pb.BackendRequest(name="web1", for_seconds=3600), timeout=10)
        stub.SetFrontendPoolBackendWeight(
            pb.SetWeightRequest(frontend="web", pool="primary", backend="web0", weight=7), timeout=10
        )
    finally:
        ch.close()
        assert d.stop() == 0
    d, ch = start()
    try:
        restored = logged(d, "overrides-restored")
        assert (restored["backends"], restored["weights"]) == (1, 1)
        stub = pb_grpc.MaglevStub(ch)
        b = stub.GetBackend(pb.GetBackendRequest(name="web1"), timeout=10)
        assert (b.state, b.override) == ("disabled", True) and 3500 < b.override_seconds_left <= 3600
        fe = stub.GetFrontend(pb.GetFrontendRequest(name="web"), timeout=10)
        member = fe.pools[0].backends[0]
        assert (member.weight, member.weight_override, member.weight_override_seconds_left) == (7, True, 0.0)
    finally:
        ch.close()
        assert d.stop() == 0
    (tmp_path / "overrides.json").write_text('{"version": 1, "backends": {"web1": {"action": "sleep"}}}')
    d, ch = start()
    try:
        rejected = logged(d, "overrides-file-rejected")
        assert "action must be one of pause, disable" in rejected["error"]
        b = pb_grpc.MaglevStub(ch).GetBackend(pb.GetBackendRequest(name="web1"), timeout=10)
        assert b.state != "disabled" and not b.override
    finally:
        ch.close()
        assert d.stop() == 0
