"""OverrideService, on the reactor thread: the operator's actions with their lifetimes.

Pause, disable and weights go through here (gRPC, maglevc, the web admin), are kept in
``overrides.py``'s model, end by themselves when given a duration (an
``OverrideExpired`` event and a log line), outlive reloads (what the config no longer has
is dropped, with a line) and restarts: the state file under ``--state-dir`` is written on
every change and applied at start, before the VPP sync's first write (this service
starts before it). A corrupt state file is set aside and reported; the daemon starts
without overrides.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from .bus import EventBus
from .config import Config
from .dataplane.service import LbSync
from .events import OverrideExpired
from .health.service import HealthService
from .health.state import BackendHealth
from .log import Logger
from .overrides import (
    STATE_FILE,
    BackendOverride,
    Overrides,
    StateFileError,
    WeightKey,
    WeightOverride,
    load_state,
    save_state,
)

MAX_DURATION = 366 * 86400.0


class DurationError(ValueError):
    pass


def check_duration(seconds: float) -> float | None:
    """A request's ``for``: 0 means until changed; raises DurationError."""
    if math.isnan(seconds) or seconds < 0 or seconds > MAX_DURATION:
        raise DurationError(f"for must be between 0 (until changed) and {MAX_DURATION:.0f} seconds, got {seconds}")
    return seconds or None


class OverrideService(Service):
    log = Logger()

    def __init__(
        self,
        health: HealthService,
        lbsync: LbSync,
        bus: EventBus,
        clock: IReactorTime,
        state_dir: str = "",
        wallclock: Callable[[], float] | None = None,
    ) -> None:
        self.setName("overrides")
        self.health = health
        self.lbsync = lbsync
        self.bus = bus
        self.clock = clock
        self.wallclock = wallclock or clock.seconds
        self.path = os.path.join(state_dir, STATE_FILE) if state_dir else ""
        self.model = Overrides()
        self._timer: IDelayedCall | None = None
        self._warned = False

    # --- start: the saved overrides, before any VPP write -------------------------------------
    def startService(self) -> None:
        super().startService()
        if not self.path:
            return
        try:
            saved = load_state(self.path)
        except StateFileError as e:
            aside = self.path + ".corrupt"
            try:
                os.replace(self.path, aside)
            except OSError:
                aside = ""
            self.log.error(
                "overrides state file {path} ignored, starting without overrides: {error}",
                event="overrides-file-rejected", path=self.path, error=str(e), moved_to=aside,
            )  # fmt: skip
            return
        now = self.wallclock()
        for d in saved.prune(self.health.config):
            self.log.info(
                "saved override of {what} dropped: not in the configuration", event="override-dropped", what=d
            )
        for o in saved.expired(now):
            self.log.info("saved override {override} expired while maglevd was stopped", event="override-expired",
                          override=_describe(o))  # fmt: skip
        for b in saved.backends.values():
            self._apply_backend(b)
        for w in saved.weights.values():
            self.lbsync.model.set_weight(*w.key, w.weight, False)
        self.model = saved
        self.log.info(
            "applied {backends} backend and {weights} weight overrides from {path}",
            event="overrides-restored", backends=len(saved.backends), weights=len(saved.weights), path=self.path,
        )  # fmt: skip
        self._schedule()

    def _apply_backend(self, b: BackendOverride) -> None:
        try:
            if b.action == "disable":
                self.health.disable(b.backend)
            else:
                self.health.pause(b.backend)
        except Exception as e:  # e.g. pause of a backend the file now disables: report, go on
            self.log.warn("saved override {override} not applied: {error}", event="override-dropped",
                          override=_describe(b), error=str(e))  # fmt: skip
            self.model.clear_backend(b.backend)

    def stopService(self) -> Any:
        super().stopService()
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    # --- operator actions ----------------------------------------------------------------------
    def pause(self, name: str, seconds: float | None = None) -> BackendHealth:
        return self._backend("pause", name, seconds)

    def disable(self, name: str, seconds: float | None = None) -> BackendHealth:
        return self._backend("disable", name, seconds)

    def resume(self, name: str, seconds: float | None = None) -> BackendHealth:
        return self._backend("resume", name, seconds)

    def enable(self, name: str, seconds: float | None = None) -> BackendHealth:
        return self._backend("enable", name, seconds)

    def _backend(self, action: str, name: str, for_seconds: float | None) -> BackendHealth:
        """Raises NoSuchBackend, OperatorError, DurationError; nothing changes then."""
        seconds = check_duration(for_seconds or 0.0)
        if seconds and action in ("resume", "enable"):
            raise DurationError(f"for applies to pause, disable and weights, not to {action}")
        health = getattr(self.health, action)(name)
        if action in ("pause", "disable"):
            self.model.set_backend(name, action, self.wallclock() + seconds if seconds else None)
        else:
            self.model.clear_backend(name)
        self._changed()
        return health  # type: ignore[no-any-return]

    def set_weight(
        self, frontend: str, pool: str, backend: str, weight: int, flush: bool, seconds: float | None = None
    ) -> Deferred[Any]:
        """Raises KeyError, ValueError (as LbSync.set_weight), DurationError; nothing changes then."""
        seconds = check_duration(seconds or 0.0)
        d = self.lbsync.set_weight(frontend, pool, backend, weight, flush)
        self.model.set_weight((frontend, pool, backend), weight, self.wallclock() + seconds if seconds else None)
        self._changed()
        return d

    @property
    def any_backend(self) -> bool:
        return bool(self.model.backends)

    def of_backend(self, backend: str) -> tuple[bool, float]:
        """(overridden, seconds left: 0 when until changed)."""
        if backend not in self.model.backends:
            return False, 0.0
        return True, self.seconds_left(backend) or 0.0

    def seconds_left(self, backend: str) -> float | None:
        b = self.model.backends.get(backend)
        return None if b is None or b.until is None else max(0.0, b.until - self.wallclock())

    def weight_seconds_left(self, key: WeightKey) -> float | None:
        w = self.model.weights.get(key)
        return None if w is None or w.until is None else max(0.0, w.until - self.wallclock())

    # --- reload ----------------------------------------------------------------------------------
    def reconfigure(self, new: Config) -> None:
        for d in self.model.prune(new):
            self.log.info("override of {what} dropped: not in the configuration", event="override-dropped", what=d)
        # the file may have changed `enabled`: what the health checker now says is the truth
        for name, b in list(self.model.backends.items()):
            state = self.health.state_of(name).value
            if (b.action == "pause" and state != "paused") or (b.action == "disable" and state != "disabled"):
                self.model.clear_backend(name)
        self._changed()

    # --- expiry and the file ---------------------------------------------------------------------
    def _changed(self) -> None:
        self._save()
        self._schedule()

    def _schedule(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        when = self.model.next_expiry()
        if when is not None and self.running:
            self._timer = self.clock.callLater(max(0.0, when - self.wallclock()), self._expire)

    def _expire(self) -> None:
        self._timer = None
        for o in self.model.expired(self.wallclock()):
            self.log.info("override {override} ended: its time is up", event="override-expired", override=_describe(o))
            if isinstance(o, BackendOverride):
                try:
                    (self.health.enable if o.action == "disable" else self.health.resume)(o.backend)
                except Exception as e:
                    self.log.warn("ending {override}: {error}", override=_describe(o), error=str(e))
                self.bus.publish(OverrideExpired(self.wallclock(), o.backend, o.action, "", ""))
            else:
                self.lbsync.set_weight(*o.key, None, False).addErrback(lambda f: None)  # VPP may be off
                self.bus.publish(OverrideExpired(self.wallclock(), o.key[2], "weight", o.key[0], o.key[1]))
        self._changed()

    def _save(self) -> None:
        if not self.path:
            return
        try:
            save_state(self.path, self.model)
        except OSError as e:
            if not self._warned:
                self.log.error(
                    "cannot write {path}: overrides will not survive a restart ({error})",
                    event="overrides-not-saved", path=self.path, error=e.strerror or str(e),
                )  # fmt: skip
            self._warned = True
        else:
            self._warned = False


def _describe(o: BackendOverride | WeightOverride) -> str:
    if isinstance(o, BackendOverride):
        return f"{o.action} {o.backend}"
    frontend, pool, backend = o.key
    return f"weight {o.weight} of {backend} in {frontend}/{pool}"
