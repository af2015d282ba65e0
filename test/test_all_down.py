"""on-all-down and the checker-isolation guard, through the model: explicit times, no reactor."""

from __future__ import annotations

from twisted.internet.task import Clock

from maglev.bus import EventBus
from maglev.config import load_config
from maglev.dataplane.guard import IsolationGuard
from maglev.dataplane.isolation import Isolation
from maglev.dataplane.model import DataplaneModel
from maglev.events import BackendTransition, CheckerIsolation
from maglev.states import FrontendState

CONFIG = """\
maglev:
  healthchecker: {isolation-threshold: 50, isolation-window: 5s}
  vpp: {lb: {ipv4-src-address: 192.0.2.254, startup-min-delay: 0s, startup-max-delay: 0s}}
  healthchecks: {h: {type: tcp, port: 80}}
  backends:
    a: {address: 192.0.2.1, healthcheck: h}
    b: {address: 192.0.2.2, healthcheck: h}
    c: {address: 192.0.2.3, healthcheck: h}
    d: {address: 192.0.2.4, healthcheck: h}
  frontends:
    web:
      address: 198.51.100.1
      port: 80
      on-all-down: keep
      pools: [{name: p, backends: {a: {weight: 100}, b: {weight: 50}}}]
    api:
      address: 198.51.100.2
      port: 80
      pools: [{name: p, backends: {c: {}, d: {}}}]
"""


def weights(m: DataplaneModel, fe: str) -> dict[str, tuple[int, bool]]:
    return {a.backend: (a.weight, a.flush) for a in m.desired([fe])[fe].ases}


def test_keep_fails_open_with_the_last_weights_and_drop_drops() -> None:
    states = {"a": "up", "b": "up", "c": "up", "d": "up"}
    m = DataplaneModel(load_config(CONFIG), states)
    m.update_frontend_states()
    states.update(a="down")
    assert weights(m, "web") == {"a": (0, True), "b": (50, False)}
    states.update(b="down", c="down", d="down")
    assert weights(m, "web") == {"a": (0, False), "b": (50, False)}, "the last non-zero weights, never flushed"
    assert weights(m, "api") == {"c": (0, True), "d": (0, True)}, "drop (the default): nothing is sent new flows"
    m.update_frontend_states()
    assert (m.frontend_states["web"], m.frontend_states["api"]) == (FrontendState.FAILING_OPEN, FrontendState.DOWN)
    states.update(b="up")
    assert weights(m, "web") == {"a": (0, True), "b": (50, False)}, "one back: the real weights again"
    m.update_frontend_states()
    assert m.frontend_states.get("web") == FrontendState.UP
    states.update(b="disabled")
    assert weights(m, "web") == {"a": (0, True), "b": (0, True)}, "not all down (one disabled): no failing open"


def test_isolation_trips_above_the_threshold_within_the_window() -> None:
    iso = Isolation()
    assert not iso.transition("a", "up", "down", 0.0, 4, 0.5, 5.0)
    assert not iso.transition("b", "up", "down", 1.0, 4, 0.5, 5.0), "2 of 4 is not more than half"
    assert not iso.transition("c", "up", "down", 9.0, 4, 0.5, 5.0), "a and b are out of the window by now"
    iso = Isolation()
    for i, b in enumerate("abc"):
        tripped = iso.transition(b, "up", "down", float(i), 4, 0.5, 5.0)
    assert tripped and iso.active and iso.held == {"a": "up", "b": "up", "c": "up"}
    assert not iso.transition("d", "up", "down", 3.0, 4, 0.5, 5.0) and "d" in iso.held, "held while it holds"
    assert not iso.recovered({"a": "down", "b": "down", "c": "down", "d": "down"}, 0.5)
    assert iso.recovered({"a": "up", "b": "up", "c": "down", "d": "down"}, 0.5)
    assert iso.release() == ["a", "b", "c", "d"] and not iso.active


def test_the_guard_holds_the_dataplane_and_lets_go() -> None:
    states = {"a": "up", "b": "up", "c": "up", "d": "up"}
    m = DataplaneModel(load_config(CONFIG), states)
    bus, clock = EventBus(), Clock()
    synced: list[list[str]] = []
    alerts: list[CheckerIsolation] = []
    bus.subscribe(CheckerIsolation, alerts.append)
    guard = IsolationGuard(m, clock, lambda fes: synced.append(list(fes)), clock.seconds)
    guard.start(bus)

    def go(backend: str, old: str, new: str) -> None:
        states[backend] = new
        bus.publish(BackendTransition(0.0, backend, old, new, "L4TOUT", "", 0, True))

    for b in "abc":
        go(b, "up", "down")
    assert [a.active for a in alerts] == [True] and alerts[0].held == ("a", "b", "c")
    assert synced == [["api", "web"]]
    assert weights(m, "web") == {"a": (100, False), "b": (50, False)}, "held as they were"
    assert m.live_states["a"] == "down", "the health state itself says what the checker sees"
    go("a", "down", "up")
    go("b", "down", "up")
    assert [a.active for a in alerts] == [True, False], "half or less down: let go by itself"
    assert weights(m, "api") == {"c": (0, True), "d": (100, False)}
    for b in "abd":
        go(b, "up", "down")
    assert alerts[-1].active
    assert guard.release("an operator") == ["a", "b", "d"] and not m.isolation.active
