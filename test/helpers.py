"""Shared test helpers: config texts and a maglevd subprocess driver."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def fetch(url: str, timeout: float = 10.0) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout) as r:
        body: bytes = r.read()
        return body.decode()


def metric(text: str, name: str) -> float | None:
    """The value of one sample line (``name`` includes its labels) in exposition text."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def source_env() -> dict[str, str]:
    """Environment for running this checkout's code in a child Python."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAGLEV_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


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
