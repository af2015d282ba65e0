"""ListBackends as it is built: every backend's steady part cached and serialized once
(``BackendWire``), the answer serialized a batch at a time between turns of the reactor
and sent as those bytes; the same message as building it afresh, over a real channel and
in-process (the web UI's ``LocalStub``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import grpc
import pytest
import pytest_twisted
from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from maglev.addresses import TcpAddress
from maglev.api.convert import _BACKENDS_TAG, BackendWire, fill_backend
from maglev.api.gen.maglev.v1 import maglev_pb2 as pb
from maglev.api.gen.maglev.v1 import maglev_pb2_grpc as pb_grpc
from maglev.api.local import LocalStub
from maglev.api.service import GrpcService
from maglev.api.servicer import LIST_CHUNK, MaglevServicer
from maglev.api.wire import varint
from maglev.bus import EventBus
from maglev.config import Config, load_config
from maglev.configservice import ConfigService
from maglev.dataplane.service import LbSync
from maglev.health.service import HealthService, NoSuchBackend, ProberState
from maglev.health.state import ProbeResult, Transition
from maglev.health.view import BackendCounts, BackendReading, BackendStatus, status_of
from maglev.states import BackendState

from .test_health_service import CONFIG as HEALTH_CONFIG
from .test_health_service import FAIL, OK, PilotFactory, ScriptedProbes

reactor: Any = _reactor
BACKENDS = LIST_CHUNK * 2 + 50  # three batches, the last one short


def config_text(backends: int = BACKENDS, frontends: int = 5) -> str:
    lines = [
        "maglev:",
        "  vpp:",
        "    lb: {ipv4-src-address: 192.0.2.254}",
        "  healthchecks:",
        "    tcp: {type: tcp, port: 80}",
        "  backends:",
        *(f"    b{i}: {{address: 10.1.{i // 250}.{i % 250 + 1}, healthcheck: tcp}}" for i in range(backends)),
        "  frontends:",
    ]
    per = backends // frontends
    for f in range(frontends):
        members = ", ".join(f"b{i}: {{}}" for i in range(f * per, (f + 1) * per))
        lines += [f"    f{f}:", f"      address: 198.51.100.{f + 1}", "      protocol: tcp", "      port: 80",
                  f"      pools: [{{name: primary, backends: {{{members}}}}}]"]  # fmt: skip
    return "\n".join(lines) + "\n"


def fresh(health: HealthService, cfg: Config, names: list[str] | None = None) -> list[pb.BackendInfo]:
    """Every backend (or these) built the plain way, message by message."""
    out = []
    for status in health.view:
        if names is None or status.name in names:
            info = pb.BackendInfo()
            fill_backend(info, status, cfg)
            out.append(info)
    return out


class Daemon_:
    """The services ListBackends reads, on a fake clock (nothing probes), and the gRPC server."""

    def __init__(self) -> None:
        cfg = load_config(config_text())
        bus = EventBus()
        self.health = HealthService(cfg, bus, Clock())
        self.lbsync = LbSync(cfg, bus, reactor, self.health.view.states, api_addr="", stats_addr="", api_dir=None)
        self.lbsync.startService()  # VPP off
        config = ConfigService("/nonexistent.yaml", cfg, bus, reactor)
        self.servicer = MaglevServicer(config, self.health, self.lbsync, bus, started=0.0)
        self.grpc = GrpcService(TcpAddress("127.0.0.1", 0), self.servicer, reflection_on=False)
        self.grpc.startService()
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{self.grpc.port}")
        self.stub = pb_grpc.MaglevStub(self.channel)

    def fresh(self, names: list[str] | None = None) -> list[pb.BackendInfo]:
        return fresh(self.health, self.servicer.cfg, names)

    async def close(self) -> None:
        await self.channel.close()
        await self.grpc.stopService()
        self.lbsync.stopService()


@pytest_twisted.async_yield_fixture
async def daemon() -> AsyncIterator[Daemon_]:
    d = Daemon_()
    yield d
    await d.close()


def awaited(coro: Any) -> Deferred[Any]:
    return Deferred.fromFuture(asyncio.ensure_future(coro))


@pytest_twisted.ensureDeferred
async def test_the_list_over_a_channel_is_every_backend_as_built_afresh(daemon: Daemon_) -> None:
    r = await awaited(daemon.stub.ListBackends(pb.ListBackendsRequest(), timeout=10))
    assert r.total == BACKENDS and not r.next_page_token
    assert list(r.backends) == daemon.fresh()
    assert len(r.backends) == BACKENDS and r.backends[7].frontends == ["f0"]
    again = await awaited(daemon.stub.ListBackends(pb.ListBackendsRequest(), timeout=10))  # from the cache
    assert again == r and len(daemon.servicer.wire) == BACKENDS


@pytest_twisted.ensureDeferred
async def test_a_page_and_a_filter_over_a_channel(daemon: Daemon_) -> None:
    size = LIST_CHUNK + 20  # a page over two batches, then the rest
    first = await awaited(daemon.stub.ListBackends(pb.ListBackendsRequest(page_size=size), timeout=10))
    assert [b.name for b in first.backends] == [f"b{i}" for i in range(size)] and first.next_page_token
    rest = await awaited(daemon.stub.ListBackends(pb.ListBackendsRequest(page_token=first.next_page_token), timeout=10))
    assert list(first.backends) + list(rest.backends) == daemon.fresh() and rest.total == BACKENDS
    f1 = await awaited(daemon.stub.ListBackends(pb.ListBackendsRequest(frontend="f1"), timeout=10))
    per = BACKENDS // 5
    assert list(f1.backends) == daemon.fresh([f"b{i}" for i in range(per, 2 * per)])


@pytest_twisted.ensureDeferred
async def test_an_operators_override_shows_in_the_list_as_in_get_backend(daemon: Daemon_) -> None:
    daemon.servicer.overrides.disable("b7", 600.0)  # one override: every backend's fields get asked
    r = await awaited(daemon.stub.ListBackends(pb.ListBackendsRequest(), timeout=10))
    b7 = r.backends[7]
    assert (b7.name, b7.state, b7.override) == ("b7", "disabled", True) and 0 < b7.override_seconds_left <= 600
    for i in (0, 7, BACKENDS - 1):
        alone = await awaited(daemon.stub.GetBackend(pb.GetBackendRequest(name=f"b{i}"), timeout=10))
        listed = pb.BackendInfo()
        listed.CopyFrom(r.backends[i])
        assert abs(listed.override_seconds_left - alone.override_seconds_left) < 5  # a moment later
        listed.override_seconds_left = alone.override_seconds_left
        assert listed == alone
    assert not r.backends[0].override


@pytest_twisted.ensureDeferred
async def test_bad_requests_are_still_refused(daemon: Daemon_) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await awaited(daemon.stub.ListBackends(pb.ListBackendsRequest(frontend="nope"), timeout=10))
    assert e.value.code() is grpc.StatusCode.NOT_FOUND and "nope" in (e.value.details() or "")


@pytest_twisted.ensureDeferred
async def test_in_process_the_answer_is_the_message(daemon: Daemon_) -> None:
    local = LocalStub(daemon.servicer)
    r = await local.ListBackends(pb.ListBackendsRequest(page_size=3))
    assert isinstance(r, pb.ListBackendsResponse) and list(r.backends) == daemon.fresh(["b0", "b1", "b2"])
    v = await local.GetVersion(pb.GetVersionRequest())
    assert isinstance(v, pb.VersionInfo)  # a handler that answers a message: as it is


@pytest_twisted.ensureDeferred
async def test_a_long_list_lets_the_reactor_run_between_batches(daemon: Daemon_) -> None:
    seen_by_timer: list[int] = []
    reactor.callLater(0, lambda: seen_by_timer.append(len(daemon.servicer.wire)))
    # As grpc.aio runs a handler: an asyncio task on the reactor's loop.
    answer = await awaited(daemon.servicer.ListBackends(pb.ListBackendsRequest(), None))
    assert len(pb.ListBackendsResponse.FromString(answer).backends) == BACKENDS
    assert seen_by_timer and 0 < seen_by_timer[0] < BACKENDS, seen_by_timer  # it ran in between


# --- BackendWire: a table of changes, each against the message built afresh ------------

T0 = 1_700_000_000.0
UP = Transition(BackendState.UNKNOWN, BackendState.UP, T0, "L4OK", "", 2)
DOWN = Transition(BackendState.UP, BackendState.DOWN, T0 + 60, "L4CON", "connection refused", 3)


def status(**changes: Any) -> BackendStatus:
    base = BackendStatus(
        "b7", "10.1.0.8", "tcp", "tcp", True, BackendState.UP, 2, 2, 3, T0, False, ProbeResult(True, "L4OK", "", 2e-4),
        T0 + 5, (UP,), {(True, "L4OK"): 7}, (7,), 0.0014, 7, 0.001, 0, 0.0, 7, 0,
    )  # fmt: skip
    return base._replace(**changes)


def configured(frontends: int) -> Config:
    return load_config(config_text(backends=10, frontends=frontends))


CHANGES: list[tuple[str, Callable[[BackendStatus], BackendStatus], int]] = [
    ("a probe later: counts only", lambda s: s._replace(checks=8, last_result_time=T0 + 6), 1),
    ("in flight", lambda s: s._replace(in_flight=True), 1),
    ("a failed probe", lambda s: s._replace(counter=1, failed_checks=1, last_result=ProbeResult(False, "L4TOUT")), 1),
    (
        "down: state, since, history",
        lambda s: s._replace(state=BackendState.DOWN, since=T0 + 60, history=(UP, DOWN), downs=1, downtime=3.5),
        1,
    ),  # fmt: skip
    ("disabled", lambda s: s._replace(enabled=False, state=BackendState.DISABLED), 1),
    ("a new address and check", lambda s: s._replace(address="10.9.9.9", healthcheck="other", rise=5, fall=1), 1),
    ("a reload: other frontends", lambda s: s, 2),
    ("never probed", lambda s: s._replace(last_result=None, last_result_time=None, checks=0), 2),
]


class Given(BackendReading):
    """A reading of a given status that no read finds unchanged: the wire builds its message
    (the steady part from its cache)."""

    given: BackendStatus

    def status(self) -> BackendStatus:
        return self.given

    def steady(self) -> tuple[object, ...]:
        s = self.given
        return (s.address, s.healthcheck, s.enabled, s.state, s.rise, s.fall, s.since, s.history)

    def counts(self) -> BackendCounts:
        s = self.given
        return BackendCounts(
            s.counter, s.in_flight, s.last_result, s.last_result_time, s.checks, s.failed_checks, s.downs
        )


def given(status: BackendStatus) -> Given:
    reading = Given(status.name, cast(Any, (object(),)), status.downtime, cast(Any, None))
    reading.given = status
    return reading


def parsed(part: bytes) -> pb.BackendInfo:
    (info,) = pb.ListBackendsResponse.FromString(part).backends
    return cast(pb.BackendInfo, info)


def built_by(wire: BackendWire, s: BackendStatus, cfg: Config, generation: int) -> pb.BackendInfo:
    return parsed(wire.part([given(s)], cfg, generation, None))


@pytest.mark.parametrize(("what", "change", "generation"), CHANGES, ids=[c[0] for c in CHANGES])
def test_the_cached_steady_part_follows_every_change(
    what: str, change: Callable[[BackendStatus], BackendStatus], generation: int
) -> None:
    configs = {1: configured(5), 2: configured(2)}  # b7 is in f3 of five, then in f1 of two
    wire = BackendWire()
    first = built_by(wire, status(), configs[1], 1)  # cached now
    changed = change(status())
    got, fresh = built_by(wire, changed, configs[generation], generation), pb.BackendInfo()
    fill_backend(fresh, changed, configs[generation])
    assert got == fresh, what
    assert got != first  # each change shows
    assert list(got.frontends) == ["f3" if generation == 1 else "f1"]


@pytest.mark.parametrize("length", [0, 1, 127, 128, 300, 16_383, 16_384, 2_097_152])
def test_a_cached_message_framed_by_length_parses_as_itself(length: int) -> None:
    body = pb.BackendInfo(name="n" * length).SerializeToString()
    framed = _BACKENDS_TAG + varint(len(body)) + body
    assert framed == pb.ListBackendsResponse(backends=[pb.BackendInfo(name="n" * length)]).SerializeToString()


def test_a_reload_drops_every_cached_backend() -> None:
    wire = BackendWire()
    for i in range(3):
        built_by(wire, status(name=f"b{i}"), configured(5), 1)
    assert len(wire) == 3
    built_by(wire, status(name="b0"), configured(5), 2)
    assert len(wire) == 1  # the others may be gone from the new configuration


def test_readings_come_a_batch_at_a_time_each_read_as_it_is_asked_for() -> None:
    svc = HealthService(load_config(config_text()), EventBus(), Clock())
    batches = svc.view.readings(None, 7)
    first = next(batches)
    svc.disable("b7")  # between two batches, as the reactor may
    rest = list(batches)
    assert [len(b) for b in [first, *rest]] == [7] * (BACKENDS // 7) + [BACKENDS % 7]
    assert [r.name for b in [first, *rest] for r in b] == svc.view.names()  # the checker's order
    assert rest[0][0].name == "b7" and rest[0][0].status().state is BackendState.DISABLED
    assert first[0].status().state is BackendState.UNKNOWN


def test_a_page_naming_a_backend_that_is_gone_is_refused_at_the_call() -> None:
    svc = HealthService(load_config(config_text()), EventBus(), Clock())
    with pytest.raises(NoSuchBackend):
        svc.view.readings(["b0", "gone"])  # before any batch is asked for
    (only,) = list(svc.view.readings(["b3", "b1"], 7))
    assert [r.name for r in only] == ["b3", "b1"]


def test_a_local_stub_has_only_the_apis_methods() -> None:
    servicer: Any = object()
    assert not hasattr(LocalStub(servicer), "NoSuchMethod")


# --- whole messages by a reading's mark: a backend's life on a fake clock ------------------

Step = tuple[str, Callable[[Any], object], bool]  # what, the change, whether a message shows it
PYTHON_PROBES: list[Step] = [
    ("a probe in flight", lambda life: life.next_probe(), True),
    ("time passes, the probe not answered yet", lambda life: life.clock.advance(0.2), False),
    ("answered: unknown to up", lambda life: life.probes.answer("web0", OK), True),
    ("waiting for the next probe", lambda life: life.clock.advance(0.3), False),
    ("the next probe flies", lambda life: life.next_probe(), True),
    ("answered: a full counter", lambda life: life.probes.answer("web0", OK), True),
    ("the next one fails", lambda life: (life.next_probe(), life.probes.answer("web0", FAIL)), True),
    ("more of them: down", lambda life: life.fail_until_down(), True),
    ("down a while: only the downtime moves", lambda life: life.clock.advance(0.5), False),
    ("disabled", lambda life: life.svc.disable("web0"), True),
    ("enabled", lambda life: life.svc.enable("web0"), True),
    ("paused", lambda life: life.svc.pause("web0"), True),
]


STATUS = BackendReading.status  # as built, whatever built() does to the class


class Life:
    """One backend's prober on a fake clock, read as ListBackends reads it."""

    def __init__(self, factory: Any) -> None:
        self.clock = Clock()
        self.probes = factory
        self.cfg = load_config(HEALTH_CONFIG)
        self.svc = HealthService(
            self.cfg, EventBus(), self.clock, factory=lambda netns: factory, rand=lambda: 0.5,
            wallclock=self.clock.seconds, timer_resolution=0.0, start_resolution=0.0,
        )  # fmt: skip
        self.svc.startService()
        self.wire = BackendWire()

    def next_probe(self) -> None:
        for _ in range(100):
            if self.probes.in_flight("web0"):
                return
            self.clock.advance(0.1)
        raise AssertionError("no probe in 10 s")

    def fail_until_down(self) -> None:
        while self.svc.probers["web0"].health.state is not BackendState.DOWN:
            self.next_probe()
            self.probes.answer("web0", FAIL)

    def read(self) -> tuple[Any, pb.BackendInfo, pb.BackendInfo]:
        """(the reading's mark, the message from the wire, the message built afresh)."""
        (r,) = [r for batch in self.svc.view.readings() for r in batch if r.name == "web0"]
        status = STATUS(r)  # not counted by built()
        assert status == status_of(self.svc.probers["web0"], self.clock.seconds())
        got = parsed(self.wire.part([r], self.cfg, 1, None))
        fresh = pb.BackendInfo()
        fill_backend(fresh, status, self.cfg)
        return r.mark, got, fresh


def calls(monkeypatch: pytest.MonkeyPatch, method: str) -> list[str]:
    """The backends whose reading's ``method`` is called from now on."""
    names: list[str] = []
    original = getattr(BackendReading, method)

    def counted(r: BackendReading) -> object:
        names.append(r.name)
        return original(r)

    monkeypatch.setattr(BackendReading, method, counted)
    return names


def built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The backends whose message the wire built (the others came from its cache): it reads
    a backend's counts once for each message it builds."""
    return calls(monkeypatch, "counts")


def test_a_readings_mark_follows_every_change_a_message_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    life = Life(ScriptedProbes())
    mark, got, fresh = life.read()
    assert got == fresh
    statuses = built(monkeypatch)
    for what, change, shows in PYTHON_PROBES:
        change(life)
        del statuses[:]
        new, got, fresh = life.read()
        assert got == fresh, what  # the downtime of the moment, whether cached or built
        assert (new != mark) == shows, what
        assert statuses == (["web0"] if shows else []), what  # built for a change, else the bytes kept
        mark = new
        for _ in range(2):  # the bytes kept by the mark, framed with the downtime of the moment
            del statuses[:]
            again, got, fresh = life.read()
            assert (again, got) == (mark, fresh), what
        assert statuses == [], what
    assert got.downtime_seconds > 0 and got.state == "paused"
    life.svc.stopService()


def test_the_autopilots_counts_change_the_mark(monkeypatch: pytest.MonkeyPatch) -> None:
    factory = PilotFactory()
    life = Life(factory)
    p = life.svc.probers["web0"]
    while p.state is not ProberState.AUTOPILOT:
        life.clock.advance(p.intervals.fast)
    mark, got, fresh = life.read()
    assert (got, life.read()[0]) == (fresh, mark), "nothing counted: the same"
    factory.pilots["web0"].count(40, life.clock.seconds())
    statuses = calls(monkeypatch, "status")
    new, got, fresh = life.read()
    assert new != mark and got == fresh and got.checks == fresh.checks
    assert statuses == [], "only the counts changed: no status is built"
    assert got.last_probe.detail == "connected (autopilot)"
    factory.pilots["web0"].land(FAIL, life.clock.seconds())
    landed, got, fresh = life.read()
    assert landed != new and got == fresh and got.failed_checks == 1
    life.svc.stopService()


# --- the whole list, kept by position ----------------------------------------------------


def listed(wire: BackendWire, svc: HealthService, cfg: Config, shift: int = 0) -> list[pb.BackendInfo]:
    """The whole list as ListBackends builds it (``shift``: each batch told the wrong place)."""
    parts, at = [], 0
    for batch in svc.view.readings(None, 7):
        parts.append(wire.part(batch, cfg, 1, None, at + shift))
        at += len(batch)
    return list(pb.ListBackendsResponse.FromString(b"".join(parts)).backends)


def test_the_whole_list_is_kept_by_position_and_checked_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    cfg = load_config(config_text())
    svc = HealthService(cfg, EventBus(), clock, wallclock=clock.seconds)
    wire = BackendWire()
    statuses = built(monkeypatch)
    assert listed(wire, svc, cfg) == fresh(svc, cfg)
    assert len(statuses) == BACKENDS
    del statuses[:]
    clock.advance(5)
    svc.disable("b9")
    assert listed(wire, svc, cfg) == fresh(svc, cfg)
    assert statuses == ["b9"]  # the others as kept
    del statuses[:]
    wire.part(next(svc.view.readings(["b3"])), cfg, 1, None)  # a page keeps its own
    assert statuses == ["b3"]
    del statuses[:]
    assert listed(wire, svc, cfg, shift=1) == fresh(svc, cfg)  # in the wrong places: no one's bytes
    assert len(statuses) == BACKENDS
