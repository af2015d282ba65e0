"""Flap dampening (RFC 2439) through the model and the Dampener, on explicit times and a Clock."""

from __future__ import annotations

import math

import pytest
from twisted.internet.task import Clock

from maglev.config import Dampening, load_config
from maglev.dataplane.dampener import Dampener
from maglev.dataplane.dampening import Flaps
from maglev.dataplane.model import DataplaneModel
from maglev.events import BackendTransition

D = Dampening()  # penalty 1000, half-life 60 s, suppress 2000, reuse 750

CONFIG = """\
maglev:
  vpp: {lb: {ipv4-src-address: 192.0.2.254, startup-min-delay: 0s, startup-max-delay: 0s}}
  healthchecks: {h: {type: tcp, port: 80}}
  backends:
    a: {address: 192.0.2.1, healthcheck: h, dampening: true}
    b: {address: 192.0.2.2, healthcheck: h}
  frontends:
    web:
      address: 198.51.100.1
      port: 80
      pools:
        - {name: p, backends: {a: {}}}
        - {name: q, backends: {b: {}}}
"""


def flap(f: Flaps, at: float) -> bool:
    f.transition("a", "up", "down", at, D)
    return "a" in f.suppressed


def test_the_third_quick_flap_suppresses_and_the_decay_reuses() -> None:
    f = Flaps()
    assert not flap(f, 0.0) and not flap(f, 1.0), "2000 minus a second's decay: not above suppress"
    assert f.penalty("a", 1.0, D) == pytest.approx(1000 * 2 ** (-1 / 60) + 1000)
    assert flap(f, 2.0)
    p = f.penalty("a", 2.0, D)
    assert p > 2000
    reuse_at = f.reuse_at("a", D)
    assert reuse_at is not None
    assert reuse_at == pytest.approx(2.0 + 60 * math.log2(p / 750))
    assert f.reuse(reuse_at - 0.5, {"a": D}) == [] and "a" in f.suppressed
    assert f.reuse(reuse_at, {"a": D}) == ["a"] and "a" not in f.suppressed
    assert not f.transition("a", "down", "up", 200.0, D), "only up -> down counts"


def test_no_dampening_no_penalty_and_the_ceiling_bounds_suppression() -> None:
    f = Flaps()
    assert not f.transition("b", "up", "down", 0.0, None) and f.merits == {}
    for i in range(50):
        f.transition("a", "up", "down", float(i), D)
    assert f.penalty("a", 49.0, D) <= 750 * 16, "capped: suppressed at most four half-lives"


def test_a_suppressed_backend_leaves_its_pool_even_while_up() -> None:
    m = DataplaneModel(load_config(CONFIG), {"a": "up", "b": "up"})
    clock = Clock()
    synced: list[list[str]] = []
    d = Dampener(m, clock, lambda fes: synced.append(list(fes)))
    for _ in range(3):
        d._on_transition(BackendTransition(0.0, "a", "up", "down", "L4CON", "", 0, True))
        clock.advance(0.5)
    assert synced == [["web"]], "one sync when it becomes suppressed"
    vip = m.desired(["web"])["web"]
    weights = {x.backend: (x.weight, x.flush) for x in vip.ases}
    assert weights == {"a": (0, False), "b": (100, False)}, "out of its pool, no flush: the fallback serves"
    clock.advance(200)
    assert synced == [["web"], ["web"]] and m.flaps.suppressed == frozenset(), "reused by the decay, on the clock"
    assert {x.backend: x.weight for x in m.desired(["web"])["web"].ases} == {"a": 100, "b": 0}


def test_a_reload_changes_who_is_dampened() -> None:
    m = DataplaneModel(load_config(CONFIG), {"a": "up", "b": "up"})
    clock = Clock()
    synced: list[list[str]] = []
    d = Dampener(m, clock, lambda fes: synced.append(list(fes)))

    def flaps(backend: str) -> None:
        for _ in range(3):
            d._on_transition(BackendTransition(clock.seconds(), backend, "up", "down", "L4CON", "", 0, True))
            clock.advance(0.5)

    flaps("a")
    assert m.flaps.suppressed == {"a"}
    swapped = CONFIG.replace("healthcheck: h, dampening: true}", "healthcheck: h}").replace(
        "192.0.2.2, healthcheck: h}", "192.0.2.2, healthcheck: h, dampening: true}"
    )
    reloaded = m.reconfigure(load_config(swapped), clock.seconds())
    assert {x.backend: x.weight for x in reloaded.desired["web"].ases} == {"a": 0, "b": 100}, "still suppressed"
    before = len(synced)
    assert d.reconfigured() is True, "what the reload's VIPs said no longer holds: LbSync computes them again"
    assert synced[before:] == [["web"]], "its VIP synced"
    assert m.flaps.suppressed == frozenset(), "a is no longer dampened: let go at once"
    assert {x.backend: x.weight for x in m.desired(["web"])["web"].ases} == {"a": 100, "b": 0}
    assert d.reconfigured() is False, "nothing more to let go"
    flaps("b")
    assert m.flaps.suppressed == {"b"} and synced[-1] == ["web"], "b is, from the reload on"
    clock.advance(200)
    assert m.flaps.suppressed == frozenset(), "and its reuse is timed by the new settings"
