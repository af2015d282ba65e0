"""The exec check with real programs: exit statuses, the environment, a hang, a flood, the pool."""

from __future__ import annotations

import ipaddress
import os
import select
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import gatherResults

from maglev.config import Backend, CheckType, ExecParams, HealthCheck, load_config
from maglev.config.errors import ConfigError
from maglev.health.probes import ProbeFactory, run
from maglev.health.probes.execcheck import ExecPool, weight_of
from maglev.health.report import Report
from maglev.health.state import ProbeResult

pytestmark = pytest.mark.slow


def reactor() -> Any:
    from twisted.internet import reactor as r

    return r


def script(tmp: Path, name: str, body: str) -> str:
    path = tmp / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def check(command: list[str], timeout: float = 2.0, port: int | None = 8080, **params: Any) -> HealthCheck:
    return HealthCheck(
        "hc", CheckType.EXEC, port=port, timeout=timeout, params=ExecParams(command=tuple(command), **params)
    )


async def probe(hc: HealthCheck, factory: ProbeFactory | None = None) -> ProbeResult:
    f = factory or ProbeFactory(reactor())
    try:
        b = Backend("web0", ipaddress.ip_address("192.0.2.10"), "hc")
        result: ProbeResult = await run(f.probe_for(b, hc))
    finally:
        if factory is None:
            f.close()
    return result


@pytest_twisted.ensureDeferred
async def test_exit_status_is_the_verdict_and_the_backend_is_in_the_environment(tmp_path: Path) -> None:
    env = tmp_path / "env"
    ok = script(tmp_path, "ok", f'env > {env}\necho "all good"\nexit 0\n')
    r = await probe(check([ok, "--fast"]))
    assert (r.ok, r.code, r.detail) == (True, "PROCOK", "exit 0: all good")
    seen = dict(line.split("=", 1) for line in env.read_text().splitlines())
    assert seen["MAGLEV_BACKEND_NAME"] == "web0" and seen["MAGLEV_BACKEND_ADDRESS"] == "192.0.2.10"
    assert seen["MAGLEV_BACKEND_PORT"] == "8080" and seen["MAGLEV_CHECK_TIMEOUT"] == "2"
    assert not any(k.startswith(("PYTEST", "VIRTUAL_ENV")) for k in seen), "nothing of maglevd's own environment"
    bad = script(tmp_path, "bad", 'echo "  "\necho "db down" >&2\nexit 3\n')
    r = await probe(check([bad]))
    assert (r.ok, r.code, r.detail) == (False, "PROCERR", "exit 3: db down"), "stderr too, first non-blank line"
    r = await probe(check([str(tmp_path / "missing")]))
    assert (r.ok, r.code) == (False, "PROCERR") and "cannot run" in r.detail
    r = await probe(check(['test "$MAGLEV_BACKEND_NAME" = web0 && echo shell ok'], shell=True))
    assert (r.ok, r.detail) == (True, "exit 0: shell ok")


@pytest_twisted.ensureDeferred
async def test_a_hanging_program_is_killed_with_its_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    hang = script(tmp_path, "hang", f"sleep 60 &\necho $! > {pidfile}\nsleep 60\n")
    r = await probe(check([hang], timeout=0.5))
    assert (r.ok, r.code, r.detail) == (False, "PROCTOUT", "killed after 0.5s") and r.duration < 5
    child = int(pidfile.read_text())
    try:
        fd = os.pidfd_open(child)  # readable once the process is gone (SIGKILL takes a moment)
    except ProcessLookupError:
        return  # gone already
    try:
        gone, _, _ = select.select([fd], [], [], 10)
    finally:
        os.close(fd)
    assert gone, "the program's own child went with it (its process group)"


@pytest_twisted.ensureDeferred
async def test_a_flood_of_output_is_bounded_and_never_blocks(tmp_path: Path) -> None:
    flood = script(tmp_path, "flood", "head -c 20000000 /dev/zero | tr '\\0' x\necho\nexit 1\n")
    r = await probe(check([flood], timeout=10, output_limit=64))
    assert (r.ok, r.code) == (False, "PROCERR")
    assert r.detail == "exit 1: " + "x" * 64, "the first 64 bytes kept, 20 MB read and dropped"


@pytest.mark.parametrize(("status", "weight"), [(0, None), (1, None), (2, 0), (52, 50), (102, 100), (255, 100)])
def test_dynamic_weights(status: int, weight: int | None) -> None:
    assert weight_of(status) == weight


@pytest_twisted.ensureDeferred
async def test_dynamic_weight_exit_codes_pass(tmp_path: Path) -> None:
    fifty = script(tmp_path, "fifty", "exit 52\n")
    r = await probe(check([fifty], dynamic_weight=True))
    assert (r.ok, r.code, r.detail) == (True, "PROCOK", "exit 52: weight 50%")
    r = await probe(check([fifty]))
    assert (r.ok, r.code) == (False, "PROCERR"), "without dynamic-weight any other exit fails"


@pytest_twisted.ensureDeferred
async def test_a_dynamic_weight_is_told_when_it_changes(tmp_path: Path) -> None:
    status = tmp_path / "status"
    prog = script(tmp_path, "dyn", f"exit $(cat {status})\n")
    told: list[tuple[str, Report, str]] = []
    f = ProbeFactory(reactor(), on_report=lambda b, r, said: told.append((b, r, said)))
    try:
        p = f.probe_for(Backend("web0", ipaddress.ip_address("192.0.2.10"), "hc"), check([prog], dynamic_weight=True))
        for code in ("52", "52", "27", "0", "1"):
            status.write_text(code)
            await run(p)
    finally:
        f.close()
    assert told == [
        ("web0", Report(percent=50), "exit 52"), ("web0", Report(percent=25), "exit 27"),
        ("web0", Report(percent=100), "exit 0"),
    ], "each change once; a failing run says nothing of the weight (its health does)"  # fmt: skip


@pytest_twisted.ensureDeferred
async def test_no_more_than_the_pool_runs_at_once(tmp_path: Path) -> None:
    running, most = tmp_path / "running", tmp_path / "most"
    running.mkdir()
    most.write_text("0")
    # each run: register, note how many are registered, linger, leave
    body = (
        f"touch {running}/$$\nn=$(ls {running} | wc -l)\n"
        f'[ "$n" -gt "$(cat {most})" ] && echo $n > {most}\nsleep 0.2\nrm {running}/$$\n'
    )
    prog = script(tmp_path, "pooled", body)
    f = ProbeFactory(reactor(), exec_pool=ExecPool(2))
    try:
        results = await gatherResults([run(f.probe_for(Backend(f"b{i}", ipaddress.ip_address("192.0.2.1"), "hc"),
                                                       check([prog]))) for i in range(6)])  # fmt: skip
    finally:
        f.close()
    assert all(r.ok for r in results)
    assert int(most.read_text()) == 2, "six programs, two at a time"


BASE = "maglev:\n  healthchecks:\n    x: {type: exec, params: %s}\n"


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ("{}", "maglev.healthchecks.x.params.command: required for exec checks"),
        ("{command: [check.sh]}", "the program must be an absolute path, got 'check.sh'"),
        ("{command: [a, b], shell: true}", "with shell: true, one string"),
        ("{command: [/bin/true], output-limit: -1}", "must be 0..65536 bytes"),
        ("{command: [/bin/true, {a: 1}]}", "params.command[1]: expected a string"),
    ],
)
def test_exec_config_errors(params: str, error: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(BASE % params)
    assert error in str(e.value)


def test_exec_config() -> None:
    cfg = load_config(BASE % "{command: [/usr/local/bin/check, --port, 80]}")
    assert cfg.healthchecks["x"].params == ExecParams(command=("/usr/local/bin/check", "--port", "80"))
    with pytest.raises(ConfigError, match="exec-concurrency: must be 1..256"):
        load_config("maglev:\n  healthchecker: {exec-concurrency: 0}\n")


@pytest_twisted.ensureDeferred
async def test_the_health_checker_publishes_the_weight_on_the_bus(tmp_path: Path) -> None:
    from twisted.internet.defer import Deferred

    from maglev.bus import EventBus
    from maglev.events import BackendReported
    from maglev.health.service import HealthService

    prog = script(tmp_path, "dyn", "exit 77\n")
    cfg = load_config(f"""
maglev:
  healthchecks:
    x: {{type: exec, interval: 1s, params: {{command: [{prog}], dynamic-weight: true}}}}
  backends:
    web0: {{address: 192.0.2.10, healthcheck: x}}
""")
    bus = EventBus()
    got: Deferred[BackendReported] = Deferred()
    bus.subscribe(BackendReported, lambda e: None if got.called else got.callback(e))
    got.addTimeout(10, reactor())
    svc = HealthService(cfg, bus, reactor())
    svc.startService()
    try:
        e = await got
    finally:
        svc.stopService()
    assert (e.backend, e.source, e.report, e.detail) == ("web0", "exec", Report(percent=75), "exit 77")
