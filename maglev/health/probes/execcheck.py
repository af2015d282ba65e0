"""The ``exec`` check (keepalived's MISC_CHECK): a program's exit status is the verdict.

The program runs without a shell (unless ``shell: true``), in a session of its own so
a timeout kills it with everything it started (its process group), with the backend
in its environment and nothing else of maglevd's: ``MAGLEV_BACKEND_NAME``,
``MAGLEV_BACKEND_ADDRESS``, ``MAGLEV_BACKEND_PORT`` (the check's port, if it has one),
``MAGLEV_CHECK_TIMEOUT`` (seconds), ``PATH=/usr/sbin:/usr/bin:/sbin:/bin``,
``LANG=C.UTF-8``. stdout and stderr are read together, the first ``output-limit``
bytes kept (the rest is read and dropped, so a chatty program never blocks); the
detail is the exit status and the first line of output. Runs as asyncio subprocesses
on the reactor's own loop (maglevd runs the asyncio reactor): nothing waits on the
reactor thread, and at most ``concurrency`` programs run at once, the others queue.
Inside the checker's network namespace the program is started through ``nsenter``.

Results: ``PROCOK`` (exit 0, or 2..255 with ``dynamic-weight``), ``PROCERR`` (any other
exit, or the program could not be started), ``PROCTOUT`` (killed at the timeout).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred

from ...config import ExecParams, HealthCheck
from ..report import Report
from ..state import ProbeResult

Reported = Callable[[str, Report, str], None]  # backend, what it says, as it said it

PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
READ = 4096
DETAIL = 200  # characters of output in the detail


class ExecPool:
    """Bounds how many check programs run at once (made on the reactor's loop, lazily)."""

    def __init__(self, concurrency: int = 8) -> None:
        self.concurrency = concurrency
        self._sem: asyncio.Semaphore | None = None

    def resize(self, concurrency: int) -> None:
        """A reload's new bound, for the runs to come (those running finish under the old one)."""
        if concurrency != self.concurrency:
            self.concurrency, self._sem = concurrency, None

    @property
    def semaphore(self) -> asyncio.Semaphore:
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.concurrency)
        return self._sem


def weight_of(status: int) -> int | None:
    """keepalived's misc_dynamic: exit 2..255 passes and sets the weight to status - 2,
    here a percentage of the configured weight, at most 100 (see docs/healthchecks.md)."""
    return min(status - 2, 100) if 2 <= status <= 255 else None


class ExecProber:
    def __init__(
        self,
        address: str,
        name: str,
        hc: HealthCheck,
        pool: ExecPool,
        netns_path: str | None = None,
        on_report: Reported | None = None,
    ) -> None:
        assert isinstance(hc.params, ExecParams)
        self.name = name
        self.on_report = on_report  # dynamic-weight: the weight a passing run gives (health/report.py)
        self.percent = 100
        self.params = hc.params
        self.hc = hc
        self.pool = pool
        argv = ["/bin/sh", "-c", hc.params.command[0]] if hc.params.shell else list(hc.params.command)
        if netns_path is not None:
            argv = ["/usr/bin/nsenter", f"--net={netns_path}", "--", *argv]
        self.argv = argv
        self.env = {
            "PATH": PATH,
            "LANG": "C.UTF-8",
            "MAGLEV_BACKEND_NAME": name,
            "MAGLEV_BACKEND_ADDRESS": address,
            "MAGLEV_CHECK_TIMEOUT": f"{hc.timeout:g}",
        }
        if hc.port is not None:
            self.env["MAGLEV_BACKEND_PORT"] = str(hc.port)

    def probe(self) -> Deferred[ProbeResult]:
        return Deferred.fromFuture(asyncio.ensure_future(self._probe()))

    async def _probe(self) -> ProbeResult:
        async with self.pool.semaphore:
            started = time.monotonic()
            try:
                proc = await asyncio.create_subprocess_exec(
                    *self.argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT,
                    env=self.env,
                    start_new_session=True,  # its own process group: killed whole at the timeout
                    close_fds=True,
                )
            except OSError as e:
                return ProbeResult(False, "PROCERR", f"cannot run {self.argv[0]}: {e.strerror or e}", 0.0)
            kept = bytearray()
            try:
                status = await asyncio.wait_for(self._finish(proc, kept), self.hc.timeout)
            except (TimeoutError, asyncio.CancelledError) as e:
                _kill_group(proc)
                await _reap(proc)
                if isinstance(e, asyncio.CancelledError):
                    raise
                return ProbeResult(False, "PROCTOUT", f"killed after {self.hc.timeout:g}s", time.monotonic() - started)
            return self._verdict(status, bytes(kept), time.monotonic() - started)

    async def _finish(self, proc: Any, kept: bytearray) -> int:
        limit = self.params.output_limit
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(READ):
            if len(kept) < limit:
                kept += chunk[: limit - len(kept)]
        status: int = await proc.wait()
        return status

    def _verdict(self, status: int, output: bytes, took: float) -> ProbeResult:
        line = next((x.strip() for x in output.decode("utf-8", "replace").splitlines() if x.strip()), "")
        said = f": {line[:DETAIL]}" if line else ""
        if status < 0:
            return ProbeResult(False, "PROCERR", f"killed by signal {-status}{said}", took)
        if status == 0:
            self._weight(100, "exit 0")
            return ProbeResult(True, "PROCOK", f"exit 0{said}", took)
        weight = weight_of(status) if self.params.dynamic_weight else None
        if weight is not None:
            self._weight(weight, f"exit {status}")
            return ProbeResult(True, "PROCOK", f"exit {status}: weight {weight}%{said}", took)
        return ProbeResult(False, "PROCERR", f"exit {status}{said}", took)

    def _weight(self, percent: int, said: str) -> None:
        """A passing run's weight, told when it changes (exit 0: the configured weight)."""
        if self.params.dynamic_weight and percent != self.percent and self.on_report is not None:
            self.percent = percent
            self.on_report(self.name, Report(percent=percent), said)


def _kill_group(proc: Any) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


async def _reap(proc: Any) -> None:
    try:
        await asyncio.wait_for(proc.wait(), 5.0)
    except TimeoutError:
        pass  # a zombie the child watcher collects later


__all__ = ["ExecPool", "ExecProber", "weight_of"]
