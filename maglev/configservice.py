"""ConfigService: holds the running configuration and performs reloads.

One path for every reload (SIGHUP, the ReloadConfig RPC, the web admin): read and
check the file in a child process (``maglev.configworker``); on any error log it,
count it and keep the running configuration untouched; otherwise make the new one
current and hand it to each registered service's ``reconfigure(new)`` in registration
order, each of which diffs old against new for its own slice (buildbot's
reconfigService, made smaller). Reloads are serialised: requests arriving
during a reload coalesce into exactly one more run.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Protocol, runtime_checkable

from twisted.application.service import Service
from twisted.internet.defer import Deferred, ensureDeferred, maybeDeferred
from twisted.internet.interfaces import IReactorThreads, IReactorTime
from twisted.internet.task import deferLater
from twisted.python.failure import Failure

from .bus import EventBus
from .config import Config, ConfigError, ErrorKind, Problem, diff_names
from .dataplane.tables import FidelityWarning, fidelity_warnings
from .events import ConfigLoaded, ConfigRejected, ReloadStarted
from .log import Logger


@runtime_checkable
class Reconfigurable(Protocol):
    @property
    def name(self) -> str | None: ...

    def reconfigure(self, new: Config) -> Deferred[None] | None: ...


@dataclass(frozen=True)
class ReloadResult:
    ok: bool
    generation: int
    kind: str = ""  # "", "structural", "semantic" or "apply"
    errors: tuple[str, ...] = field(default=())


Loader = Callable[[str], "Deferred[Config]"]


LOAD_TIMEOUT = 60.0
"""Seconds a reload may spend reading and checking the file (a stuck network filesystem)."""
DIFF_PART = 2_000
"""Names a reload compares a reactor turn, for its log line (about 5 ms)."""


class LoaderFailed(Exception):
    """The child that reads the file failed in a way no configuration explains."""


def process_loader(timeout: float = LOAD_TIMEOUT) -> Loader:
    """Read and check the file in a child process (``maglev.configworker``): a parse of
    10,000 backends on a thread of the daemon held the GIL from the reactor for seconds.
    A read that hangs is killed after ``timeout`` and reported as a structural error;
    the daemon's shutdown never waits for it."""

    def load(path: str) -> Deferred[Config]:
        return Deferred.fromFuture(asyncio.ensure_future(_load_in_child(path, timeout)))

    return load


async def _load_in_child(path: str, timeout: float) -> Config:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p or os.getcwd() for p in sys.path)}  # this maglev
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "maglev.configworker", path,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=env, close_fds=True,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except (TimeoutError, asyncio.CancelledError) as e:
        # Not waited for: a read stuck in the kernel ends the child only when it returns.
        # asyncio reaps it then.
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        if isinstance(e, asyncio.CancelledError):
            raise
        raise ConfigError(
            ErrorKind.STRUCTURAL, [Problem("<file>", f"not read and checked within {timeout:g}s (a stuck filesystem?)")]
        ) from None
    if proc.returncode != 0 or not out:
        last = (err.decode("utf-8", "replace").strip().splitlines() or ["no output"])[-1]
        raise LoaderFailed(f"the configuration loader exited with status {proc.returncode}: {last}")
    answer = await unpickle_parts(out)  # from our own child, never from the outside
    if answer[0] == "error":
        raise ConfigError(answer[1], answer[2])
    config: Config = answer[1]
    return config


async def unpickle_parts(out: bytes) -> tuple[Any, ...]:
    """The child's answer (``maglev.configworker``): its parts one reactor turn each, so
    probes and the API go on between them; the last pickle, which refers to them."""
    unpickler = pickle.Unpickler(io.BytesIO(out))
    while (answer := unpickler.load())[0] == "part":
        await asyncio.sleep(0)
    return answer  # type: ignore[no-any-return]


class ConfigView:
    """What other services may read of the configuration: the running one, its generation,
    and a check of the file on disk that applies nothing."""

    def __init__(self, svc: ConfigService) -> None:
        self._svc = svc

    @property
    def config(self) -> Config:
        return self._svc.config

    @property
    def generation(self) -> int:
        return self._svc.generation

    @property
    def path(self) -> str:
        return self._svc.path

    def check(self) -> Deferred[Config]:
        """Read and check the file on disk (in a child process); raises ConfigError, applies nothing."""
        return self._svc.load()


class ConfigService(Service):
    log = Logger()

    def __init__(
        self,
        path: str,
        config: Config,
        bus: EventBus,
        reactor: IReactorTime,
        loader: Loader | None = None,
        handle_sighup: bool = False,
        wallclock: Callable[[], float] = time.time,
    ) -> None:
        self.setName("config")
        self.path = path
        self.config = config
        self.generation = 1
        self.bus = bus
        self._reactor = reactor
        self._loader = loader or process_loader()
        self._handle_sighup = handle_sighup
        self._wallclock = wallclock
        self._services: list[Reconfigurable] = []
        self._running_reload = False
        self._queued: list[Deferred[ReloadResult]] = []
        self._old_handler: Any = None
        self.last_result: ReloadResult | None = None
        self.view = ConfigView(self)

    def load(self) -> Deferred[Config]:
        """The file on disk, read and checked; nothing is applied."""
        return self._loader(self.path)

    def add_reconfigurable(self, svc: Reconfigurable) -> None:
        self._services.append(svc)

    def startService(self) -> None:
        super().startService()
        self._publish_loaded()
        self._warn_fidelity()
        if self._handle_sighup and threading.current_thread() is threading.main_thread():
            self._old_handler = signal.signal(signal.SIGHUP, self._on_sighup)

    def stopService(self) -> Deferred[None] | None:
        if self._old_handler is not None:
            signal.signal(signal.SIGHUP, self._old_handler)
            self._old_handler = None
        return super().stopService()  # type: ignore[no-any-return]

    def _on_sighup(self, signum: int, frame: FrameType | None) -> None:
        # A signal handler only schedules work on the reactor.
        IReactorThreads(self._reactor).callFromThread(self._reload_from_signal)

    def _reload_from_signal(self) -> None:
        self.log.info("SIGHUP: reloading {path}", event="config-reload-requested", path=self.path, source="SIGHUP")
        self.reload("SIGHUP")

    def reload(self, source: str = "api") -> Deferred[ReloadResult]:
        """Reload the file; the Deferred fires with the outcome and never fails."""
        self.bus.publish(ReloadStarted(self._wallclock(), source))
        d: Deferred[ReloadResult] = Deferred()
        self._queued.append(d)
        if not self._running_reload:
            self._next_round()
        return d

    def _next_round(self) -> None:
        waiters, self._queued = self._queued, []
        self._running_reload = True

        def finished(result: ReloadResult) -> None:
            self.last_result = result
            for w in waiters:
                w.callback(result)
            if self._queued:
                self._next_round()
            else:
                self._running_reload = False

        def crashed(failure: Failure) -> ReloadResult:
            # A fault of ours, not of the file: said, and the next reload still runs.
            self.log.failure(
                "configuration reload failed: {path}", failure, path=self.path, event="config-reload-failed"
            )
            errors = (f"internal error: {failure.getErrorMessage()}; see the log",)
            return ReloadResult(False, self.generation, "apply", errors)

        ensureDeferred(self._reload_once()).addErrback(crashed).addCallback(finished)

    async def _reload_once(self) -> ReloadResult:
        clock: IReactorTime = self._reactor
        started = clock.seconds()
        try:
            new = await self._loader(self.path)
        except ConfigError as e:
            errors = tuple(str(p) for p in e.problems)
            self.log.error(
                "configuration reload aborted without making any changes: {kind} error in {path}: {errors}",
                event="config-reload-rejected",
                kind=e.kind.label,
                path=self.path,
                errors=list(errors),
                generation=self.generation,
            )
            self.bus.publish(ConfigRejected(self._wallclock(), self.generation, self.path, e.kind.label, errors))
            return ReloadResult(False, self.generation, e.kind.label, errors)
        except LoaderFailed as e:
            self.log.error(
                "configuration reload aborted without making any changes: cannot load {path}: {why}",
                event="config-reload-failed",
                path=self.path,
                why=str(e),
            )
            return ReloadResult(False, self.generation, "structural", (f"cannot load {self.path}: {e}",))
        except Exception:
            self.log.failure(
                "configuration reload aborted without making any changes: cannot load {path}", path=self.path
            )
            return ReloadResult(False, self.generation, "structural", (f"cannot load {self.path}",))

        changes = await self._changes(self.config, new)
        warnings = fidelity_warnings(new)  # out of the apply's turn; it works out the weight scales too
        # Applied in one reactor turn (no service's reconfigure waits): all see it at once.
        applying = time.perf_counter()  # the turn's own length, whatever the reactor's clock
        self.config = new
        self.generation += 1
        failed: list[str] = []
        for svc in self._services:
            try:
                await maybeDeferred(svc.reconfigure, new)
            except Exception:
                self.log.failure("service {service} failed to apply the configuration", service=svc.name)
                failed.append(f"{svc.name}: failed to apply, see the log")
        self._publish_loaded()
        self._warn_fidelity(warnings)
        applied = time.perf_counter() - applying
        elapsed = clock.seconds() - started
        if failed:
            self.log.error(
                "configuration update partially applied (generation {generation}); failed: {failed}",
                event="config-reload-partial",
                generation=self.generation,
                failed=failed,
            )
            return ReloadResult(False, self.generation, "apply", tuple(failed))
        self.log.info(
            "configuration update complete: generation {generation} from {path} in {elapsed:.3f}s",
            event="config-reload",
            generation=self.generation,
            path=self.path,
            elapsed=elapsed,
            apply_seconds=round(applied, 6),
            changes={section: diff for section, diff in changes.items() if diff},
        )
        return ReloadResult(True, self.generation)

    async def _changes(self, old: Config, new: Config) -> dict[str, dict[str, list[str]]]:
        """What a reload changes, for its log line: worked out before anything is applied, a
        part of each section a reactor turn (10,000 backends: 25-35 ms in all)."""
        out: dict[str, dict[str, list[str]]] = {}
        for section in ("frontends", "backends", "healthchecks"):
            before, after = getattr(old, section), getattr(new, section)
            found: dict[str, list[str]] = {}
            for start in range(0, max(len(after), 1), DIFF_PART):
                if start:
                    await deferLater(self._reactor, 0, lambda: None)
                for k, v in vars(diff_names(before, after, slice(start, start + DIFF_PART))).items():
                    if v and k != "unchanged":
                        found.setdefault(k, []).extend(v)
            out[section] = found
        return out

    def _warn_fidelity(self, warnings: list[FidelityWarning] | None = None) -> None:
        """Pools whose weights VPP's table cannot honour (docs/dataplane.md, weight fidelity)."""
        for w in fidelity_warnings(self.config) if warnings is None else warnings:
            self.log.warn(
                "{warning}", event="weights-not-honoured", warning=str(w), frontend=w.frontend, pool=w.pool,
                error=w.error, honouring_length=w.honouring_length,
            )  # fmt: skip

    def _publish_loaded(self) -> None:
        c = self.config
        self.bus.publish(
            ConfigLoaded(
                self._wallclock(),
                self.generation,
                self.path,
                len(c.frontends),
                len(c.backends),
                len(c.healthchecks),
            )
        )
