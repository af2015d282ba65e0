"""Typed events that services publish on the bus. Plain values, no Twisted.

Config, backend, frontend and VPP events; consumers subscribe by class (a tuple of
classes for several), and a subscription can be cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass

from .health.report import Report


@dataclass(frozen=True)
class Event:
    """Base class; ``time`` is wall-clock seconds for people to read."""

    time: float


@dataclass(frozen=True)
class ConfigLoaded(Event):
    """A configuration became active (generation 1 at start, then each good reload)."""

    generation: int
    path: str
    frontends: int
    backends: int
    healthchecks: int


@dataclass(frozen=True)
class ConfigRejected(Event):
    """A reload was refused; the running configuration is unchanged."""

    generation: int  # still the active one
    path: str
    kind: str  # "structural" or "semantic"
    errors: tuple[str, ...]


@dataclass(frozen=True)
class BackendTransition(Event):
    """A backend changed state (probe results, operator actions, reloads)."""

    backend: str
    old: str
    new: str
    code: str
    detail: str
    counter: int
    enabled: bool


@dataclass(frozen=True)
class BackendReported(Event):
    """A backend said something new of itself: its agent's line, an exec check's weight
    (health/report.py). ``report`` is a Report; neutral (ready, 100%) takes back what
    that source said before."""

    backend: str
    source: str  # "agent" or "exec"
    report: Report
    detail: str  # what it said, as it said it


@dataclass(frozen=True)
class BackendChanged(Event):
    """A backend's configuration changed without a state transition (e.g. its address)."""

    backend: str
    what: str


@dataclass(frozen=True)
class FrontendTransition(Event):
    """A frontend's aggregate state changed (up, down, unknown); old == new replays the current state."""

    frontend: str
    old: str
    new: str


@dataclass(frozen=True)
class VppConnected(Event):
    version: str
    pid: int
    weights: bool  # lb_as_set_weight available (VPP master); False for releases up to 26.06


@dataclass(frozen=True)
class VppDisconnected(Event):
    reason: str


@dataclass(frozen=True)
class LbSynced(Event):
    """One reconciliation run finished."""

    scope: str  # "all" or "vip"
    frontends: tuple[str, ...]
    changes: int
    errors: tuple[str, ...]
    complete: bool = False  # a full sync after the warm-up: every VIP of the config written


@dataclass(frozen=True)
class ReloadStarted(Event):
    """A reload began (SIGHUP, ReloadConfig, the web admin): files other than the config
    (the gRPC tokens and certificates) are read again too, whatever the config's fate."""

    source: str


@dataclass(frozen=True)
class OverrideExpired(Event):
    """An operator's timed pause, disable or weight ended by itself."""

    backend: str
    action: str  # "pause", "disable" or "weight"
    frontend: str  # for a weight
    pool: str


@dataclass(frozen=True)
class CheckerIsolation(Event):
    """The checker-isolation guard tripped (active) or let go."""

    active: bool
    fraction: float  # of all backends that went down together
    held: tuple[str, ...]
