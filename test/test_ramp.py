"""Slow start (maglev.dataplane.ramp) through the model: whole-second steps, no reactor."""

from __future__ import annotations

import pytest

from maglev.config import load_config
from maglev.dataplane.model import DataplaneModel
from maglev.dataplane.ramp import Ramps, ramp_weight

CONFIG = """\
maglev:
  vpp: {lb: {ipv4-src-address: 192.0.2.254, startup-min-delay: 0s, startup-max-delay: 0s}}
  healthchecks: {h: {type: tcp, port: 80}}
  backends:
    a: {address: 192.0.2.1, healthcheck: h}
    b: {address: 192.0.2.2, healthcheck: h, slow-start: 10s}
    c: {address: 192.0.2.3, healthcheck: h}
  frontends:
    web:
      address: 198.51.100.1
      port: 80
      slow-start: 30s
      pools:
        - {name: p, backends: {a: {weight: 100}, b: {weight: 50}}}
        - {name: q, slow-start: 0s, backends: {c: {}}}
"""


@pytest.mark.parametrize(
    ("weight", "elapsed", "duration", "expected"),
    [(100, 0, 30, 4), (100, 1, 30, 4), (100, 12, 30, 40), (100, 29, 30, 97), (100, 30, 30, 100), (100, 5, 0, 100),
     (1, 0, 30, 1), (0, 3, 30, 0), (50, 2, 4, 25)],
)  # fmt: skip
def test_ramp_weight(weight: int, elapsed: int, duration: float, expected: int) -> None:
    assert ramp_weight(weight, elapsed, duration) == expected


def test_only_a_backend_going_up_while_warm_ramps_and_down_ends_it() -> None:
    r = Ramps()
    assert not r.transition("a", "unknown", "up", 0.0, warm=False), "the start's warm-up: no ramp"
    assert r.transition("a", "down", "up", 10.0, warm=True)
    assert r.tick(10.9, lambda b: 30) == [] and r.elapsed == {"a": 0}
    assert r.tick(11.0, lambda b: 30) == ["a"] and r.elapsed == {"a": 1}
    r.transition("a", "up", "down", 12.0, warm=True)
    assert r.elapsed == {}, "down mid-ramp: over; it starts again when the backend is back"
    r.transition("a", "down", "up", 20.0, warm=True)
    assert r.tick(50.0, lambda b: 30) == ["a"] and r.started == {}, "finished: the last step is the full weight"


def test_the_model_ramps_each_member_by_its_own_slow_start() -> None:
    m = DataplaneModel(load_config(CONFIG), {"a": "up", "b": "up"})
    m.start_warmup(0.0)
    assert m.longest_slow_start("a") == 30.0 and m.longest_slow_start("b") == 10.0
    assert m.longest_slow_start("c") == 0.0, "the pool's 0 s: off"
    m.ramps.transition("a", "down", "up", 100.0, warm=m.warm)
    m.ramps.transition("b", "down", "up", 100.0, warm=m.warm)
    m.ramps.tick(112.0, m.longest_slow_start)
    weights = {(x.pool, x.backend): x.weight for x in m.desired()["web"].ases}
    assert weights[("p", "a")] == 40, "frontend's 30 s: 12/30 of 100"
    assert weights[("p", "b")] == 50, "its own 10 s are over at 12 s"


def test_the_api_shows_each_member_in_its_slow_start_and_its_timed_weight() -> None:
    from types import MappingProxyType

    from twisted.internet import reactor

    from maglev.api.convert import frontend_info
    from maglev.bus import EventBus
    from maglev.dataplane.service import LbSync

    cfg = load_config(CONFIG)
    states = {"a": "up", "b": "up", "c": "down"}
    sync = LbSync(cfg, EventBus(), reactor, MappingProxyType(states), api_addr="", stats_addr="", api_dir=None)
    m = sync.model
    m.start_warmup(0.0)
    m.ramps.transition("a", "down", "up", 100.0, warm=m.warm)
    m.ramps.tick(112.0, m.longest_slow_start)
    m.set_weight("web", "p", "b", 20, flush=False)
    fe = cfg.frontends["web"]
    info = frontend_info(fe, m.desired()["web"], sync.view, states, lambda key: 42.5 if key[2] == "b" else None)
    a, b = info.pools[0].backends
    (c,) = info.pools[1].backends
    assert (a.slow_start_elapsed, a.slow_start_duration, a.effective_weight, a.weight_override) == (12, 30.0, 40, False)
    assert (b.weight, b.weight_override, b.weight_override_seconds_left, b.slow_start_duration) == (20, True, 42.5, 0)
    assert (c.state, c.address, c.effective_weight, c.slow_start_elapsed) == ("down", "192.0.2.3", 0, 0)
