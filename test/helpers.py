"""Shared test helpers: config texts and a maglevd subprocess driver."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from maglev.api.gen.maglev.v1 import maglev_pb2_grpc as pb_grpc
from maglev.childproc import tied_to_parent

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "debian" / "maglev.yaml"

MINIMAL = """\
maglev:
  vpp:
    lb: {ipv4-src-address: 192.0.2.254, ipv6-src-address: "2001:db8::fe"}
  healthchecks:
    http: {type: http, port: 80, params: {path: /healthz}}
  backends:
    web0: {address: 192.0.2.10, healthcheck: http}
    web1: {address: 192.0.2.11, healthcheck: http}
  frontends:
    web:
      address: 198.51.100.1
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends: {web0: {weight: 100}}
        - name: fallback
          backends: {web1: {}}
"""


VENV_BIN = Path(sys.executable).parent


def fetch(url: str, timeout: float = 10.0, headers: dict[str, str] | None = None) -> str:
    import urllib.request

    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as r:
        body: bytes = r.read()
        return body.decode()


def metric(text: str, name: str) -> float | None:
    """The value of one sample line (``name`` includes its labels) in exposition text."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


ANY = "\0any"
"""In ``sample``'s labels: a label that must be there, with any value."""


def sample(text: str, name: str, labels: dict[str, str] | None = None, openmetrics: bool = False) -> float | None:
    """One series' value, the whole text parsed as Prometheus reads it (or, strictly, OpenMetrics)."""
    if openmetrics:
        from prometheus_client.openmetrics.parser import text_string_to_metric_families
    else:
        from prometheus_client.parser import text_string_to_metric_families
    found = None
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            want = labels or {}
            if s.name == name and s.labels.keys() == want.keys():
                if all(v == ANY or s.labels[k] == v for k, v in want.items()):
                    found = s.value
    return found


def source_env() -> dict[str, str]:
    """Environment for running this checkout's code in a child Python."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAGLEV_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env["MAGLEV_WEB_ADDR"] = "127.0.0.1:0"  # never the default port a developer's demo may hold
    env["MAGLEV_STATE_DIR"] = ""  # no daemon under test shares the machine's overrides (tests pass their own)
    return env


def run_scenario(module: str, *args: str, timeout: float = 120) -> list[str]:
    """Run ``python -m module args`` from this checkout in a fresh interpreter (nothing another
    test left behind shows up in it); its stdout's lines, once it exited 0."""
    run = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=source_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout.splitlines()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


class Demo:
    """The demo (real backends, the VPP emulator, maglevd) with everything up and programmed."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.control = free_port()
        self.daemon = Daemon(
            [
                "--run-dir", str(tmp), "--metrics-addr", "127.0.0.1:0", "--control-port", str(self.control),
                "--grpc-addr", "127.0.0.1:0", "--web-addr", "127.0.0.1:0",
            ],
            command=[sys.executable, "-m", "maglev.demo"],
        )  # fmt: skip
        try:
            rec = self.daemon.event("listening", service="grpc")
            # everything up and programmed before the tests look (in whatever order it happens)
            wanted = {("backend-transition", b) for b in ("web0", "web1", "web2")} | {("lb-warmup-release", None)}

            def seen(r: dict[str, Any]) -> bool:
                key = (r.get("event"), r.get("backend") if r.get("event") == "backend-transition" else None)
                if key in wanted and (key[0] != "backend-transition" or r.get("new") == "up"):
                    wanted.discard(key)
                return not wanted

            self.daemon.wait_for(seen, timeout=30)
        except BaseException:
            self.daemon.kill()
            raise
        self.address = rec["address"]
        web = [r for r in self.daemon.seen if r.get("event") == "listening" and r.get("service") == "web-http"]
        self.web = "http://" + web[0]["address"]
        self.channel = grpc.insecure_channel(rec["address"])
        self.stub = pb_grpc.MaglevStub(self.channel)

    def flip(self, backend: str, state: str) -> None:
        req = urllib.request.Request(f"http://127.0.0.1:{self.control}/{backend}/{state}", method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200

    def close(self) -> None:
        self.channel.close()
        self.daemon.stop()
        self.daemon.kill()


class Daemon:
    """maglevd as a child process; its JSON log lines arrive on a queue."""

    def __init__(
        self,
        args: list[str],
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        command: list[str] | None = None,
    ) -> None:
        self.args = args
        self.proc = subprocess.Popen(
            [*(command or [sys.executable, "-m", "maglev"]), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env or source_env(),
            cwd=cwd,
            preexec_fn=tied_to_parent,  # default SIGINT even from a background job; dies with the test run
        )
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.lines.put(json.loads(line.lstrip("\x1e")))
            except ValueError:
                self.lines.put({"unparsed": line})
        self.lines.put(None)

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def wait_for(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 15.0) -> dict[str, Any]:
        """The first new log record matching ``pred``; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching log record within {timeout}s; stderr: {''.join(self.stderr)}")
            try:
                rec = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if rec is None:
                raise AssertionError(f"maglevd exited ({self.proc.poll()}); stderr: {''.join(self.stderr)}")
            self.seen.append(rec)
            if pred(rec):
                return rec

    def event(self, name: str, timeout: float = 15.0, **fields: Any) -> dict[str, Any]:
        return self.wait_for(
            lambda r: r.get("event") == name and all(r.get(k) == v for k, v in fields.items()), timeout
        )

    def metrics_url(self) -> str:
        rec = self.event("listening", service="metrics-http")
        return f"http://{rec['address']}/metrics"

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


async def until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """On the running reactor: wait for ``condition()`` to hold, looking after every 10 ms
    of reactor time (at most ``timeout``)."""
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await deferLater(reactor, 0.01, lambda: None)
    raise AssertionError(f"not true within {timeout} s: {condition}")
