"""HealthService scheduling, operator actions and reload, on task.Clock with scripted probes."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from maglev.bus import EventBus
from maglev.config import Backend, Config, HealthCheck, load_config
from maglev.events import BackendChanged, BackendTransition
from maglev.health.lateness import LATENESS_BUCKETS
from maglev.health.metrics import LATENESS_METRIC as LATENESS
from maglev.health.metrics import HealthMetrics, LatenessCollector
from maglev.health.probes import DeferredProbe
from maglev.health.probes.connect import AutopilotStats
from maglev.health.service import HealthService, NoSuchBackend, ProberState
from maglev.health.state import OperatorError, ProbeResult, State
from maglev.metrics import MaglevMetrics, series_of

from .helpers import sample

CONFIG = """\
maglev:
  healthchecker: {transition-history: 3}
  vpp: {lb: {ipv4-src-address: 192.0.2.254}}
  healthchecks:
    web: {type: tcp, port: 80, interval: 2s, fast-interval: 1s, down-interval: 5s, timeout: 500ms, rise: 2, fall: 3}
  backends:
    web0: {address: 192.0.2.10, healthcheck: web}
    web1: {address: 192.0.2.11, healthcheck: web}
  frontends:
    a:
      address: 198.51.100.1
      port: 80
      pools: [{name: p, backends: {web0: {}, web1: {}}}]
    b:
      address: 198.51.100.2
      port: 80
      pools: [{name: p, backends: {web0: {}}}]
"""

OK = ProbeResult(True, "L4OK", "connected", 0.001)
FAIL = ProbeResult(False, "L4CON", "connection refused", 0.001)


class ScriptedProbes:
    """Probe factory: each probe is a Deferred the test answers (or an automatic answer)."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = defaultdict(int)
        self.pending: dict[str, list[Deferred[ProbeResult]]] = defaultdict(list)
        self.auto: dict[str, ProbeResult] = {}
        self.addresses: dict[str, str] = {}
        self.closed = 0
        self.probes_closed: list[str] = []  # backends whose probe was closed (never to be used again)

    def probe_for(self, backend: Backend, hc: HealthCheck, address: str | None = None) -> Any:
        def probe() -> Deferred[ProbeResult]:
            self.calls[backend.name] += 1
            self.addresses[backend.name] = str(backend.address)
            d: Deferred[ProbeResult] = Deferred()
            if backend.name in self.auto:
                d.callback(self.auto[backend.name])
            else:
                self.pending[backend.name].append(d)
            return d

        def closed() -> None:
            self.probes_closed.append(backend.name)

        return DeferredProbe(probe, backend.name, closed)

    def answer(self, name: str, result: ProbeResult) -> None:
        self.pending[name].pop(0).callback(result)

    def in_flight(self, name: str) -> int:
        return sum(1 for d in self.pending[name] if not d.called)

    def close(self) -> None:
        self.closed += 1

    def start_lateness(self) -> tuple[tuple[int, ...], float]:
        return (0,) * (len(LATENESS_BUCKETS) + 1), 0.0  # no autopilot here: Python counts every start


def changed(text: str, old: str, new: str) -> Config:
    assert old in text
    return load_config(text.replace(old, new))


class HealthServiceTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.bus = EventBus()
        self.transitions: list[BackendTransition] = []
        self.bus.subscribe(BackendTransition, self.transitions.append)
        self.probes = ScriptedProbes()
        self.rand_value = 0.5
        self.svc = HealthService(
            load_config(CONFIG),
            self.bus,
            self.clock,
            factory=lambda netns: self.probes,
            rand=lambda: self.rand_value,
            wallclock=self.clock.seconds,
            timer_resolution=0.0,
            start_resolution=0.0,
        )
        self.svc.startService()
        self.addCleanup(self.svc.stopService)

    def moves(self) -> list[tuple[str, str, str]]:
        return [(t.backend, t.old, t.new) for t in self.transitions]

    def test_one_prober_per_backend_whatever_the_frontends(self) -> None:
        self.assertEqual(set(self.svc.probers), {"web0", "web1"})
        self.clock.advance(0.5)  # rand 0.5 x fast interval 1s: the first probes
        self.assertEqual(dict(self.probes.calls), {"web0": 1, "web1": 1})

    def test_startup_is_spread_over_the_fast_interval(self) -> None:
        values = iter([0.0, 0.25, 0.75] + [0.5] * 100)
        clock = Clock()
        probes = ScriptedProbes()
        cfg = load_config(CONFIG.replace("    web1:", "    web2: {address: 192.0.2.12, healthcheck: web}\n    web1:"))
        svc = HealthService(
            cfg,
            EventBus(),
            clock,
            factory=lambda n: probes,
            rand=lambda: next(values),
            timer_resolution=0.0,
            start_resolution=0.0,
        )
        svc.startService()
        seen = []
        for _ in range(4):
            seen.append(sum(probes.calls.values()))
            clock.advance(0.25)
        self.assertEqual(seen, [0, 2, 2, 3])  # delays 0, 0.25, 0.75: nothing fires before the clock turns
        svc.stopService()

    def test_never_two_probes_in_flight_and_cadence_follows_state(self) -> None:
        self.clock.advance(0.5)
        self.assertEqual(self.probes.in_flight("web0"), 1)
        self.clock.advance(10)  # a hung probe: no second probe is sent
        self.assertEqual(self.probes.calls["web0"], 1)
        self.probes.answer("web0", OK)  # unknown -> up; the next probe is overdue: at once
        self.assertEqual(self.moves()[-1], ("web0", "unknown", "up"))
        self.clock.advance(0)
        self.assertEqual(self.probes.calls["web0"], 2)
        self.probes.answer("web0", OK)  # fully up: normal interval, 2s after this probe started
        self.clock.advance(1.99)
        self.assertEqual(self.probes.calls["web0"], 2)
        self.clock.advance(0.01)
        self.assertEqual(self.probes.calls["web0"], 3)
        self.probes.answer("web0", FAIL)  # up, counter between bounds: fast interval 1s
        self.clock.advance(0.99)
        self.assertEqual(self.probes.calls["web0"], 3)
        self.clock.advance(0.01)
        self.assertEqual(self.probes.calls["web0"], 4)

    def test_interval_counts_from_probe_start(self) -> None:
        self.clock.advance(0.5)
        self.clock.advance(0.3)
        self.probes.answer("web1", OK)  # took 0.3s; fully up: next 2s after its start
        self.clock.advance(1.69)
        self.assertEqual(self.probes.calls["web1"], 1)
        self.clock.advance(0.01)
        self.assertEqual(self.probes.calls["web1"], 2)
        self.assertEqual(self.svc.probers["web1"].lateness, 0.0)

    def test_probe_starts_share_a_grid_without_stretching_intervals(self) -> None:
        """Starts round up to the grid (0.3 s here, to make it visible), and each next probe is
        due an interval after the previous one was due: the rounding does not add up."""
        clock, probes = Clock(), ScriptedProbes()
        probes.auto["web0"] = OK
        svc = HealthService(
            load_config(CONFIG), EventBus(), clock, factory=lambda n: probes, rand=lambda: 0.25,
            wallclock=clock.seconds, timer_resolution=0.0, start_resolution=0.3,
        )  # fmt: skip
        svc.startService()
        self.addCleanup(svc.stopService)
        starts = []
        for _ in range(2000):
            before = probes.calls["web0"]
            clock.advance(0.01)
            if probes.calls["web0"] > before:
                starts.append(clock.seconds())
        # First due at 0.25 (0.25 x fast interval), then every 1.9 s (0.95 x interval), each
        # started at the next multiple of 0.3: 11 probes in 20 s, not 10 at 2.1 s apart.
        due = [0.25 + 1.9 * k for k in range(11)]
        self.assertEqual(len(starts), 11, starts)
        for t, d in zip(starts, due, strict=True):
            self.assertLess(abs(t - -(-d // 0.3) * 0.3), 0.0101, starts)  # the clock moves in 10 ms steps

    def test_backends_with_short_intervals_start_probes_on_the_fine_grid(self) -> None:
        from maglev.config import CheckType

        cases = [(2, 1, 5, True), (1, 0.5, 1, True), (1, 0.2, 5, False), (0.1, 0.1, 0.1, False)]
        for interval, fast, down, coarse in cases:
            hc = HealthCheck("hc", CheckType.TCP, port=80, interval=interval, fast_interval=fast, down_interval=down)
            self.assertIs(self.svc.starts_for(hc), self.svc.coarse_starts if coarse else self.svc.timers, hc)

    def test_transitions_rise_and_fall_with_jittered_intervals(self) -> None:
        self.probes.auto["web0"] = FAIL
        self.clock.advance(0.5)
        self.assertEqual(self.moves(), [("web0", "unknown", "down")])
        self.clock.advance(5.0)  # down interval (fully down)
        self.assertEqual(self.probes.calls["web0"], 2)
        self.probes.auto["web0"] = OK
        self.rand_value = 1.0  # +10%
        self.clock.advance(5.0)
        self.assertEqual(self.probes.calls["web0"], 3)
        self.clock.advance(1.09)  # fast interval 1s +10% not yet over
        self.assertEqual(self.probes.calls["web0"], 3)
        self.clock.advance(0.02)
        self.assertEqual(self.probes.calls["web0"], 4)
        self.assertEqual(self.moves(), [("web0", "unknown", "down"), ("web0", "down", "up")])
        t = self.transitions[-1]
        self.assertEqual((t.code, t.counter), ("L4OK", 4))

    def test_pause_sends_no_probes_and_resume_restarts_in_unknown(self) -> None:
        self.probes.auto["web0"] = OK
        self.clock.advance(0.5)
        self.svc.pause("web0")
        sent = self.probes.calls["web0"]
        self.clock.advance(60)
        self.assertEqual(self.probes.calls["web0"], sent, "paused backends get no probe traffic")
        health = self.svc.resume("web0")
        self.assertIs(health.state, State.UNKNOWN)
        self.clock.advance(0)
        self.assertEqual(self.probes.calls["web0"], sent + 1)
        self.assertEqual(
            [(o, n) for b, o, n in self.moves() if b == "web0"],
            [("unknown", "up"), ("up", "paused"), ("paused", "unknown"), ("unknown", "up")],
        )

    def test_pausing_cancels_the_probe_in_flight(self) -> None:
        self.clock.advance(0.5)
        self.svc.pause("web1")
        self.assertEqual(self.probes.in_flight("web1"), 0)

    def test_disable_enable_and_refusals(self) -> None:
        self.clock.advance(0.5)
        self.svc.disable("web1")
        self.assertRaises(OperatorError, self.svc.pause, "web1")
        self.assertRaises(OperatorError, self.svc.resume, "web1")
        self.assertRaises(NoSuchBackend, self.svc.pause, "web9")
        before = len(self.transitions)
        self.svc.disable("web1")
        self.assertEqual(len(self.transitions), before, "disabling twice emits no transition")
        sent = self.probes.calls["web1"]
        self.clock.advance(30)
        self.assertEqual(self.probes.calls["web1"], sent)
        self.svc.enable("web1")
        self.clock.advance(0)
        self.assertEqual(self.probes.calls["web1"], sent + 1)
        self.assertEqual(self.svc.state_of("web1"), State.UNKNOWN)

    # --- reload ----------------------------------------------------------------------
    def settle(self) -> None:
        self.probes.auto.update({"web0": OK, "web1": OK})
        self.clock.advance(0.5)
        for name in ("web0", "web1"):
            while self.probes.pending[name]:
                self.probes.answer(name, OK)

    def test_reload_unchanged_check_keeps_state_history_and_probe(self) -> None:
        self.settle()
        before = list(self.svc.probers["web0"].health.history)
        prober = self.svc.probers["web0"]
        self.svc.reconfigure(changed(CONFIG, "b:\n      address: 198.51.100.2", "b:\n      address: 198.51.100.3"))
        self.assertIs(self.svc.probers["web0"], prober)
        self.assertEqual(list(prober.health.history), before)
        self.assertIs(prober.health.state, State.UP)

    def test_reload_changed_check_restarts_in_unknown(self) -> None:
        self.settle()
        self.svc.reconfigure(changed(CONFIG, "rise: 2, fall: 3", "rise: 3, fall: 3"))
        self.assertEqual(sorted(self.probes.probes_closed), ["web0", "web1"], "the old probes are closed")
        self.assertEqual(self.svc.state_of("web0"), State.UNKNOWN)
        self.assertEqual(self.svc.probers["web0"].health.counter, 2)
        self.assertIn(("web0", "up", "unknown"), self.moves())

    def test_reloads_compare_each_backend_with_the_check_it_runs_now(self) -> None:
        self.settle()
        same = changed(CONFIG, "b:\n      address: 198.51.100.2", "b:\n      address: 198.51.100.3")
        self.svc.reconfigure(same)  # both backends keep the check of the start
        self.svc.reconfigure(changed(CONFIG, "b:\n      address: 198.51.100.2", "b:\n      address: 198.51.100.4"))
        self.assertEqual(self.probes.probes_closed, [], "an equal check is the same check")
        self.svc.reconfigure(changed(CONFIG, "rise: 2, fall: 3", "rise: 3, fall: 3"))  # shared: one compare, both
        self.assertEqual(sorted(self.probes.probes_closed), ["web0", "web1"])
        self.svc.reconfigure(changed(CONFIG, "rise: 2, fall: 3", "rise: 3, fall: 3"))  # now what they run
        self.assertEqual(sorted(self.probes.probes_closed), ["web0", "web1"], "nothing restarts twice")

    def test_reload_removed_and_new_backends(self) -> None:
        self.settle()
        new = CONFIG.replace(
            "    web1: {address: 192.0.2.11, healthcheck: web}\n", "    web2: {address: 192.0.2.12, healthcheck: web}\n"
        )
        new = new.replace("web0: {}, web1: {}", "web0: {}, web2: {}")
        self.svc.reconfigure(load_config(new))
        self.assertEqual(self.svc.state_of("web1"), State.REMOVED)
        self.assertEqual(self.svc.state_of("web2"), State.UNKNOWN)
        self.assertEqual(self.probes.probes_closed, ["web1"], "a removed backend's probe is closed")
        sent = self.probes.calls["web1"]
        self.clock.advance(30)
        self.assertEqual(self.probes.calls["web1"], sent, "removed backends are not probed")
        self.assertGreater(self.probes.calls["web2"], 0)
        self.svc.reconfigure(load_config(CONFIG))  # web1 comes back: a new backend again
        self.assertEqual(self.svc.state_of("web1"), State.UNKNOWN)

    def test_a_changed_address_is_unknown_until_probed_there(self) -> None:
        self.settle()
        changes: list[BackendChanged] = []
        self.bus.subscribe(BackendChanged, changes.append)
        self.svc.reconfigure(changed(CONFIG, "192.0.2.10", "192.0.2.99"))
        prober = self.svc.probers["web0"]
        self.assertEqual(str(prober.backend.address), "192.0.2.99")
        self.assertIs(prober.health.state, State.UNKNOWN, "probe before trust")
        self.assertEqual(prober.health.history[-1].detail, "address changed to 192.0.2.99")
        self.clock.advance(0)
        self.assertEqual(self.probes.addresses["web0"], "192.0.2.99")
        self.assertEqual([c.backend for c in changes], ["web0"])
        self.settle()
        self.assertIs(prober.health.state, State.UP, "up once its checks pass at the new address")

    def test_operator_disabled_backend_stays_disabled_across_reloads(self) -> None:
        self.settle()
        self.svc.disable("web0")
        self.svc.reconfigure(load_config(CONFIG))
        self.assertEqual(self.svc.state_of("web0"), State.DISABLED)
        self.svc.reconfigure(changed(CONFIG, "rise: 2, fall: 3", "rise: 4, fall: 3"))
        self.assertEqual(self.svc.state_of("web0"), State.DISABLED)
        self.assertFalse(self.svc.probers["web0"].health.enabled)

    def test_changing_enabled_in_the_file_applies(self) -> None:
        self.settle()
        off = changed(
            CONFIG,
            "web1: {address: 192.0.2.11, healthcheck: web}",
            "web1: {address: 192.0.2.11, healthcheck: web, enabled: false}",
        )
        self.svc.reconfigure(off)
        self.assertEqual(self.svc.state_of("web1"), State.DISABLED)
        self.svc.reconfigure(load_config(CONFIG))
        self.assertEqual(self.svc.state_of("web1"), State.UNKNOWN)

    def test_transition_history_size_follows_reload(self) -> None:
        self.settle()
        self.svc.reconfigure(changed(CONFIG, "transition-history: 3", "transition-history: 1"))
        health = self.svc.probers["web0"].health
        self.assertEqual((health.history_size, len(health.history)), (1, 1))  # the newest kept
        self.assertEqual(health.history[-1].new, State.UP)

    def test_netns_change_restarts_every_probe_with_a_new_factory(self) -> None:
        self.settle()
        made: list[str | None] = []

        def factory(netns: str | None) -> ScriptedProbes:
            made.append(netns)
            return self.probes

        self.svc._make_factory = factory
        self.svc.reconfigure(changed(CONFIG, "transition-history: 3", "transition-history: 3, netns: blue"))
        self.assertEqual(made, ["blue"])
        self.assertEqual(self.svc.state_of("web0"), State.UNKNOWN)
        self.assertEqual(self.probes.closed, 1)

    # --- metrics and logs -------------------------------------------------------------
    def test_probe_start_lateness_is_counted_and_exported(self) -> None:
        m = MaglevMetrics()
        m.registry.register(LatenessCollector(self.svc.view))
        self.probes.auto["web0"] = FAIL
        self.clock.advance(0.5)  # both first probes start when due
        self.assertEqual(self.svc.view.start_lateness(), ((2,) + (0,) * len(LATENESS_BUCKETS), 0.0))
        self.clock.advance(5.5)  # web0 (down) was due again 5 s after its start: 0.5 s late
        counts, total = self.svc.view.start_lateness()
        self.assertEqual(counts[LATENESS_BUCKETS.index(0.5)], 1)
        self.assertAlmostEqual(total, 0.5)
        v = m.registry.get_sample_value
        self.assertEqual(v("maglev_probe_start_lateness_seconds_bucket", {"le": "0.001"}), 2)
        self.assertEqual(v("maglev_probe_start_lateness_seconds_bucket", {"le": "0.25"}), 2)
        self.assertEqual(v("maglev_probe_start_lateness_seconds_bucket", {"le": "0.5"}), 3)
        self.assertEqual(v("maglev_probe_start_lateness_seconds_count", {}), 3)
        self.assertAlmostEqual(v("maglev_probe_start_lateness_seconds_sum", {}) or 0.0, 0.5)
        # Asked for alone, it is all a scrape reads: the per-backend families are not collected.
        only = {f.name for f in m.registry.restricted_registry(series_of([LATENESS])).collect()}
        self.assertEqual(only, {LATENESS})

    def test_metrics(self) -> None:
        hm = HealthMetrics(self.svc.view)
        hm.watch(self.bus)
        self.probes.auto["web0"] = FAIL
        self.clock.advance(0.5)
        for openmetrics in (False, True):  # each parsed whole, strictly for OpenMetrics
            text = hm.text(openmetrics)

            def v(name: str, labels: dict[str, str], text: str = text, om: bool = openmetrics) -> float | None:
                return sample(text, name, labels, om)

            web0, tcp = {"backend": "web0"}, {"backend": "web0", "type": "tcp"}
            self.assertEqual(v("maglev_probe_total", {**tcp, "result": "failure", "code": "L4CON"}), 1)
            self.assertEqual(v("maglev_probe_duration_seconds_count", tcp), 1)
            self.assertEqual(v("maglev_probe_duration_seconds_bucket", {**tcp, "le": "0.001"}), 1)
            self.assertEqual(v("maglev_probe_duration_seconds_bucket", {**tcp, "le": "+Inf"}), 1)
            self.assertEqual(v("maglev_probe_duration_seconds_sum", tcp), 0.001)
            self.assertEqual(v("maglev_backend_transitions_total", {**web0, "from": "unknown", "to": "down"}), 1)
            self.assertEqual(v("maglev_backend_state", {**web0, "healthcheck": "web", "state": "down"}), 1)
            self.assertEqual(v("maglev_backend_state", {**web0, "healthcheck": "web", "state": "up"}), 0)
            self.assertEqual(v("maglev_backend_health", web0), 0)
            self.assertEqual(v("maglev_backend_enabled", {"backend": "web1"}), 1)
        # Only the families asked for are written, and no backend is read for transitions alone.
        only = "".join(p for p in hm.scrape(lambda f: f == "maglev_backend_transitions", False) if p)
        self.assertEqual({line.split("{")[0] for line in only.splitlines() if not line.startswith("#")},
                         {"maglev_backend_transitions_total"})  # fmt: skip
        self.assertEqual(list(hm.scrape(lambda f: f == "maglev_backend_transitions", False)).count(None), 1)


class ScriptedPilot:
    """A probe with the autopilot capability: Python probes answer at once with OK; the
    pilot counts passes the test hands it, until the test lands a failure."""

    def __init__(self) -> None:
        self.pending = AutopilotStats(0, 0, (), 0.0, 0.0, 0.0, 0.0, None, 0)
        self.flights: list[float] = []  # the due times it was given
        self.done: Any = None
        self.last_base = 0.0
        self.last_late = 0.0
        self.cancelled = 0
        self.asked = 0  # stats() calls

    @property
    def pilot(self) -> ScriptedPilot:
        return self

    def start(self, done: Any) -> Any:
        done(OK)
        return self

    def close(self) -> None:
        return None

    def autopilot(self, due: float, interval: float, resolution: float, stall: float, done: Any) -> Any:
        self.flights.append(due)
        self.done = done
        return self

    def count(self, passes: int, when: float) -> None:
        hits = ((0, passes),) if passes else ()  # every pass in the first duration bucket
        self.pending = AutopilotStats(passes, passes, hits, 0.001 * passes, 0.001, when, 0.0, None, 0)

    def stats(self) -> AutopilotStats:
        self.asked += 1
        s, self.pending = self.pending, AutopilotStats(0, 0, (), 0.0, 0.0, 0.0, 0.0, None, 0)
        return s

    def ok_result(self, duration: float, status: int) -> ProbeResult:
        return ProbeResult(True, "L4OK", "connected (autopilot)", duration)

    def in_flight(self) -> bool:
        return self.done is not None

    def land(self, result: ProbeResult, base: float) -> None:
        done, self.done = self.done, None
        self.last_base = base
        done(result)

    def cancel(self) -> None:
        self.cancelled += 1
        self.done = None


class PilotFactory:
    def __init__(self) -> None:
        self.pilots: dict[str, ScriptedPilot] = {}

    def probe_for(self, backend: Backend, hc: HealthCheck, address: str | None = None) -> ScriptedPilot:
        return self.pilots.setdefault(backend.name, ScriptedPilot())

    def close(self) -> None:
        pass

    def start_lateness(self) -> tuple[tuple[int, ...], float]:
        return (0,) * (len(LATENESS_BUCKETS) + 1), 0.0


class AutopilotTests(SynchronousTestCase):
    """The prober's explicit state with a probe that can fly, and reads that never publish."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.bus = EventBus()
        self.published: list[object] = []
        self.bus.subscribe(BackendTransition, self.published.append)
        self.factory = PilotFactory()
        self.svc = HealthService(
            load_config(CONFIG), self.bus, self.clock, factory=lambda netns: self.factory, rand=lambda: 0.5,
            wallclock=self.clock.seconds, timer_resolution=0.0, start_resolution=0.0,
        )  # fmt: skip
        self.svc.startService()
        self.addCleanup(self.svc.stopService)

    def fly(self, name: str) -> ScriptedPilot:
        """Up with a full counter (rise 2, fall 3): the next probe is the pilot's."""
        p = self.svc.probers[name]
        self.assertIs(p.state, ProberState.WAITING)
        for _ in range(6):
            if p.state is ProberState.AUTOPILOT:
                break
            self.clock.advance(p.intervals.fast)
        self.assertIs(p.state, ProberState.AUTOPILOT)
        self.assertTrue(p.health.fully_up)
        return self.factory.pilots[name]

    def test_a_steady_backend_flies_and_comes_back_on_the_first_failure(self) -> None:
        pilot = self.fly("web0")
        self.assertEqual(len(pilot.flights), 1)
        transitions = len(self.published)
        pilot.land(FAIL, self.clock.seconds())
        p = self.svc.probers["web0"]
        self.assertIs(p.state, ProberState.WAITING, "back to probing from Python")
        self.assertEqual(p.health.state, State.UP, "one failure of fall 3: still up")
        self.assertEqual(len(self.published), transitions)

    def test_reading_folds_the_counts_in_and_publishes_nothing(self) -> None:
        pilot = self.fly("web0")
        before = len(self.published)
        first = self.svc.view.backend("web0")
        pilot.count(40, self.clock.seconds())
        status = self.svc.view.backend("web0")
        self.assertEqual(status.probes_sent, first.probes_sent + 40)
        self.assertEqual(status.results[(True, "L4OK")], first.results[(True, "L4OK")] + 40)
        assert status.last_result is not None
        self.assertEqual(status.last_result.detail, "connected (autopilot)")
        self.assertEqual(status.state, State.UP)
        for _ in range(3):  # a scrape, a listing, a single read: none of them publishes
            list(self.svc.view)
        self.assertEqual(len(self.published), before, "reads never publish")
        self.assertIs(self.svc.probers["web0"].state, ProberState.AUTOPILOT, "reads do not land the pilot")

    def test_every_way_off_the_autopilot_keeps_its_counts_and_off_it_nothing_asks(self) -> None:
        self.fly("web0")
        for name, off in (("web0", lambda: self.svc.pause("web0")), ("web1", None)):
            pilot = self.factory.pilots[name]
            self.assertIs(self.svc.probers[name].state, ProberState.AUTOPILOT)
            sent = self.svc.probers[name].probes_sent
            pilot.count(25, self.clock.seconds())
            if off is None:
                pilot.land(FAIL, self.clock.seconds())
            else:
                off()
            p = self.svc.probers[name]
            self.assertIsNot(p.state, ProberState.AUTOPILOT)
            self.assertEqual(p.probes_sent, sent + 25, name)
            asked = pilot.asked
            for _ in range(3):
                list(self.svc.view.readings())
                self.svc.view.backend(name)
            self.assertEqual(pilot.asked, asked, f"{name}: off the autopilot, a read asks the engine nothing")

    def test_a_read_of_a_flying_backend_asks_the_engine_once_and_shows_what_it_counted(self) -> None:
        pilot = self.fly("web0")
        for names in (None, ["web0"]):  # the whole list, a page
            pilot.count(7, self.clock.seconds())
            checks, asked = self.svc.probers["web0"].checks, pilot.asked
            batches = self.svc.view.readings(names)
            self.assertEqual(pilot.asked, asked, "nothing asked before a batch is read")
            (reading,) = [r for batch in batches for r in batch if r.name == "web0"]
            self.assertEqual(pilot.asked, asked + 1, names)
            self.assertEqual(reading.counts().checks, checks + 7, names)

    def test_pausing_a_flying_backend_cancels_the_pilot(self) -> None:
        pilot = self.fly("web1")
        self.svc.pause("web1")
        self.assertEqual(pilot.cancelled, 1)
        self.assertIs(self.svc.probers["web1"].state, ProberState.IDLE)
        self.assertEqual(self.svc.view.states["web1"], State.PAUSED)

    def test_the_states_mapping_follows_every_announcement_and_is_read_only(self) -> None:
        states = self.svc.view.states
        self.assertEqual(dict(states), {"web0": State.UNKNOWN, "web1": State.UNKNOWN})
        self.fly("web0")
        self.assertEqual(states["web0"], State.UP)
        self.assertEqual(states["web0"], "up", "a state is its own name")
        with self.assertRaises(TypeError):
            states["web0"] = State.DOWN  # type: ignore[index]
        smaller = CONFIG.replace("    web1: {address: 192.0.2.11, healthcheck: web}\n", "")
        self.svc.reconfigure(load_config(smaller.replace("web0: {}, web1: {}", "web0: {}")))
        self.assertEqual(states["web1"], State.REMOVED)
