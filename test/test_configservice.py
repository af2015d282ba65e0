"""Reload: one path, nothing changes on error, services get reconfigure(new), reloads coalesce."""

from __future__ import annotations

import asyncio
import io
import pickle
import sys
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from maglev.bus import EventBus
from maglev.config import Config, ConfigError, ErrorKind, Problem, load_config, load_config_file
from maglev.configservice import DIFF_PART, ConfigService, ReloadResult, process_loader, unpickle_parts
from maglev.configworker import PART, parts
from maglev.events import ConfigLoaded, ConfigRejected
from maglev.metrics import MaglevMetrics

from .helpers import MINIMAL

OLD = load_config(MINIMAL)
NEW = load_config(MINIMAL.replace("192.0.2.11", "192.0.2.99"))


class Recorder:
    def __init__(self, name: str, result: Any = None) -> None:
        self.name = name
        self.seen: list[Config] = []
        self.result = result

    def reconfigure(self, new: Config) -> Any:
        self.seen.append(new)
        return self.result


class ConfigServiceTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.bus = EventBus()
        self.events: list[Any] = []
        self.bus.subscribe((ConfigLoaded, ConfigRejected), self.events.append)
        self.pending: list[Deferred[Config]] = []
        self.svc = ConfigService("/etc/maglev.yaml", OLD, self.bus, Clock(), loader=self._load, wallclock=lambda: 1e9)
        self.a, self.b = Recorder("health"), Recorder("vpp")
        self.svc.add_reconfigurable(self.a)
        self.svc.add_reconfigurable(self.b)
        self.svc.startService()

    def _load(self, path: str) -> Deferred[Config]:
        d: Deferred[Config] = Deferred()
        self.pending.append(d)
        return d

    def test_start_publishes_generation_one(self) -> None:
        self.assertEqual(self.events, [ConfigLoaded(1e9, 1, "/etc/maglev.yaml", 1, 2, 1)])

    def test_good_reload_reaches_every_service_in_order(self) -> None:
        d = self.svc.reload()
        self.pending.pop().callback(NEW)
        self.assertEqual(self.successResultOf(d), ReloadResult(True, 2))
        self.assertIs(self.svc.config, NEW)
        self.assertEqual(self.a.seen, [NEW])
        self.assertEqual(self.b.seen, [NEW])
        self.assertEqual(self.events[-1].generation, 2)

    def test_rejected_reload_changes_nothing(self) -> None:
        for kind in (ErrorKind.STRUCTURAL, ErrorKind.SEMANTIC):
            d = self.svc.reload()
            self.pending.pop().errback(ConfigError(kind, [Problem("maglev.x", "bad", 3)]))
            result = self.successResultOf(d)
            self.assertEqual(result, ReloadResult(False, 1, kind.label, ("maglev.x: bad (line 3)",)))
            self.assertIs(self.svc.config, OLD)
            self.assertEqual(self.svc.generation, 1)
            self.assertEqual(self.a.seen, [])
            self.assertIsInstance(self.events[-1], ConfigRejected)
            self.assertEqual(self.events[-1].kind, kind.label)

    def test_unexpected_loader_failure_changes_nothing(self) -> None:
        d = self.svc.reload()
        self.pending.pop().errback(RuntimeError("disk on fire"))
        self.assertFalse(self.successResultOf(d).ok)
        self.assertIs(self.svc.config, OLD)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_reloads_during_a_reload_coalesce_into_one_more(self) -> None:
        first = self.svc.reload()
        second, third = self.svc.reload(), self.svc.reload()
        self.assertEqual(len(self.pending), 1)
        self.pending.pop().callback(NEW)
        self.assertEqual(self.successResultOf(first).generation, 2)
        self.assertNoResult(second)
        self.assertEqual(len(self.pending), 1, "exactly one more load")
        self.pending.pop().callback(OLD)
        self.assertEqual(self.successResultOf(second).generation, 3)
        self.assertEqual(self.successResultOf(third).generation, 3)
        self.assertEqual(self.pending, [])

    def test_a_failing_service_is_reported_and_the_others_still_run(self) -> None:
        svc = ConfigService("/x", OLD, self.bus, Clock(), loader=lambda p: succeed(NEW))
        broken = Recorder("web", fail(RuntimeError("nope")))
        after = Recorder("grpc")
        svc.add_reconfigurable(broken)
        svc.add_reconfigurable(after)
        result = self.successResultOf(svc.reload())
        self.assertEqual((result.ok, result.kind), (False, "apply"))
        self.assertEqual(after.seen, [NEW])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_a_fault_of_ours_before_the_apply_changes_nothing_and_the_next_reload_runs(self) -> None:
        import maglev.configservice

        def broken(cfg: Config) -> list[Any]:
            raise RuntimeError("a bug")

        restore = self.patch(maglev.configservice, "fidelity_warnings", broken)
        d = self.svc.reload()
        self.pending.pop().callback(NEW)
        result = self.successResultOf(d)
        restore.restore()
        self.assertEqual(result, ReloadResult(False, 1, "apply", ("internal error: a bug; see the log",)))
        self.assertIs(self.svc.config, OLD)
        self.assertEqual((self.a.seen, self.b.seen), ([], []))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        d = self.svc.reload()  # not wedged
        self.pending.pop().callback(NEW)
        self.assertEqual(self.successResultOf(d), ReloadResult(True, 2))
        self.assertEqual(self.a.seen, [NEW])

    def test_metrics_follow_reloads(self) -> None:
        m = MaglevMetrics()
        m.watch(self.bus)
        d = self.svc.reload()
        self.pending.pop().errback(ConfigError(ErrorKind.SEMANTIC, [Problem("p", "m")]))
        self.successResultOf(d)
        d = self.svc.reload()
        self.pending.pop().callback(NEW)
        self.successResultOf(d)
        value = m.registry.get_sample_value
        self.assertEqual(value("maglev_config_generation"), 2)
        self.assertEqual(value("maglev_config_reloads_total", {"result": "semantic"}), 1)
        self.assertEqual(value("maglev_config_reloads_total", {"result": "ok"}), 1)
        self.assertEqual(value("maglev_config_objects", {"kind": "backends"}), 2)

    def test_a_reload_warns_of_weights_vpp_cannot_honour(self) -> None:
        from twisted.logger import ILogObserver, globalLogPublisher

        from .test_tables import SKEWED, config_text

        seen: list[dict[str, Any]] = []
        observer: ILogObserver = seen.append  # type: ignore[assignment]
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        d = self.svc.reload()
        self.pending.pop().callback(load_config(config_text(False, SKEWED)))
        self.assertTrue(self.successResultOf(d).ok)
        warned = [e for e in seen if e.get("event") == "weights-not-honoured"]
        self.assertEqual([(e["frontend"], e["pool"], e["honouring_length"]) for e in warned], [("big", "p", 2048)])
        self.assertIn("new-flows-table-length 2048 would", warned[0]["warning"])
        seen.clear()
        d = self.svc.reload()
        self.pending.pop().callback(load_config(config_text(True, SKEWED)))  # fitted: honoured, nothing to say
        self.successResultOf(d)
        self.assertEqual([e for e in seen if e.get("event") == "weights-not-honoured"], [])


def test_a_long_section_is_compared_a_part_a_turn_before_anything_is_applied() -> None:
    from twisted.logger import ILogObserver, globalLogPublisher

    old = load_config(many_backends(DIFF_PART + 1))
    new = load_config(many_backends(DIFF_PART + 2))
    clock, loading = Clock(), Deferred[Config]()
    svc = ConfigService("/etc/maglev.yaml", old, EventBus(), clock, loader=lambda path: loading, wallclock=lambda: 1e9)
    health = Recorder("health")
    svc.add_reconfigurable(health)
    svc.startService()
    seen: list[dict[str, Any]] = []
    observer: ILogObserver = seen.append  # type: ignore[assignment]
    globalLogPublisher.addObserver(observer)
    try:
        results: list[ReloadResult] = []
        svc.reload().addCallback(results.append)
        loading.callback(new)
        assert health.seen == [] and svc.config is old and results == []  # the backends' second part waits
        clock.advance(0)
        assert health.seen == [new] and svc.config is new and results == [ReloadResult(True, 2)]
    finally:
        globalLogPublisher.removeObserver(observer)
    [done] = [e for e in seen if e.get("event") == "config-reload"]
    assert done["changes"] == {"backends": {"added": [f"b{DIFF_PART + 1}"]}, "frontends": {"changed": ["web"]}}


# --- the child process that reads and checks the file ---------------------------------
SEMANTIC = MINIMAL.replace("192.0.2.11, healthcheck: http", "192.0.2.11, healthcheck: nope")
STRUCTURAL = MINIMAL.replace("192.0.2.11", "not-an-address")


@pytest_twisted.ensureDeferred
async def test_the_child_hands_back_the_config_the_daemon_would_have_read(tmp_path: Path) -> None:
    path = tmp_path / "maglev.yaml"
    path.write_text(MINIMAL)
    cfg = await process_loader()(str(path))
    assert cfg == load_config_file(str(path))
    assert dict(cfg.backends) == dict(OLD.backends)  # the read-only maps came back as maps


def many_backends(n: int) -> str:
    lines = ["maglev:", "  vpp:", "    lb: {ipv4-src-address: 192.0.2.254}", "  healthchecks:",
             "    tcp: {type: tcp, port: 80}", "  backends:"]  # fmt: skip
    lines += [f"    b{i}: {{address: 10.1.{i // 250}.{i % 250 + 1}, healthcheck: tcp}}" for i in range(n)]
    members = ", ".join(f"b{i}: {{}}" for i in range(n))
    lines += ["  frontends:", "    web:", "      address: 198.51.100.1", "      protocol: tcp", "      port: 80",
              "      new-flows-table-length: 4096"]  # fmt: skip
    lines.append(f"      pools: [{{name: primary, backends: {{{members}}}}}]")
    return "\n".join(lines) + "\n"


@pytest_twisted.ensureDeferred
async def test_a_large_config_comes_back_whole_over_several_parts(tmp_path: Path) -> None:
    path = tmp_path / "maglev.yaml"
    path.write_text(many_backends(1201))
    here = load_config_file(str(path))
    assert [len(p) for p in parts(here)] == [PART, PART, 201, 1]  # the backends, then the frontend
    cfg = await process_loader()(str(path))
    assert cfg == here and len(cfg.backends) == 1201
    assert cfg.frontends["web"].pools[0].members[1200].backend == "b1200"
    assert list(cfg.backends) == list(here.backends)  # in the file's order, as the daemon reads it


@pytest_twisted.ensureDeferred
async def test_the_parts_are_taken_one_reactor_turn_at_a_time() -> None:
    from twisted.internet import reactor

    buf = io.BytesIO()
    pickler = pickle.Pickler(buf)
    shared = ["a backend"]
    for i in range(3):
        pickler.dump(("part", [shared] if i == 0 else [i]))
    pickler.dump(("config", {"b0": shared}))  # refers to the first part's object: the memo is shared
    turns: list[int] = []
    done = False

    def count() -> None:  # one a reactor turn until the parts are in
        turns.append(1)
        if not done:
            reactor.callLater(0, count)

    reactor.callLater(0, count)
    kind, cfg = await Deferred.fromFuture(asyncio.ensure_future(unpickle_parts(buf.getvalue())))  # as the daemon
    done, got = True, len(turns)
    assert kind == "config" and cfg == {"b0": ["a backend"]}
    assert got >= 2  # other work ran between the parts (taken in one go: none at all)


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize(
    "text", [SEMANTIC, STRUCTURAL, "maglev: [", None], ids=["semantic", "structural", "not-yaml", "missing"]
)
async def test_a_bad_file_is_the_same_error_from_the_child(tmp_path: Path, text: str | None) -> None:
    path = tmp_path / "maglev.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError) as here:
        load_config_file(str(path))
    with pytest.raises(ConfigError) as there:
        await process_loader()(str(path))
    assert (there.value.kind, there.value.problems) == (here.value.kind, here.value.problems)
    assert there.value.kind is (ErrorKind.SEMANTIC if text == SEMANTIC else ErrorKind.STRUCTURAL)


@pytest_twisted.ensureDeferred
async def test_a_read_that_takes_too_long_is_killed_and_rejected(tmp_path: Path) -> None:
    path = tmp_path / "maglev.yaml"
    path.write_text(MINIMAL)
    with pytest.raises(ConfigError) as e:
        await process_loader(timeout=0.0)(str(path))  # a timeout of none: never done in time
    assert e.value.kind is ErrorKind.STRUCTURAL and "not read and checked within 0s" in str(e.value)


@pytest_twisted.ensureDeferred
async def test_a_loader_that_fails_rejects_the_reload_and_says_why(tmp_path: Path, monkeypatch: Any) -> None:
    from twisted.internet import reactor

    path = tmp_path / "maglev.yaml"
    path.write_text(MINIMAL)
    monkeypatch.setattr(sys, "executable", "/bin/false")  # exits 1 and says nothing
    svc = ConfigService(str(path), OLD, EventBus(), reactor)
    result = await svc.reload()
    assert not result.ok and result.kind == "structural" and svc.config is OLD and svc.generation == 1
    assert result.errors == (f"cannot load {path}: the configuration loader exited with status 1: no output",)
