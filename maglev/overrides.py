"""The operator's overrides: pause and disable per backend, weights per pool member, each
until changed or until a time. They outlive reloads and restarts (the state file). Pure:
times are wall-clock seconds passed in; reading and writing the file are plain I/O.

The state file is JSON, written atomically (a temporary file in the same directory,
fsync, rename, fsync of the directory), so a crash leaves the old file or the new one.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from typing import Any

from .config import Config
from .textfile import FileProblem, read_text

STATE_FILE = "overrides.json"
MAX_STATE_FILE = 4 << 20
ACTIONS = ("pause", "disable")

WeightKey = tuple[str, str, str]  # frontend, pool, backend


@dataclass(frozen=True)
class BackendOverride:
    backend: str
    action: str  # "pause" or "disable"
    until: float | None  # wall clock; None: until changed


@dataclass(frozen=True)
class WeightOverride:
    key: WeightKey
    weight: int
    until: float | None


class StateFileError(Exception):
    pass


class Overrides:
    def __init__(self) -> None:
        self.backends: dict[str, BackendOverride] = {}
        self.weights: dict[WeightKey, WeightOverride] = {}

    def set_backend(self, backend: str, action: str, until: float | None) -> None:
        self.backends[backend] = BackendOverride(backend, action, until)

    def clear_backend(self, backend: str) -> BackendOverride | None:
        return self.backends.pop(backend, None)

    def set_weight(self, key: WeightKey, weight: int, until: float | None) -> None:
        self.weights[key] = WeightOverride(key, weight, until)

    def clear_weight(self, key: WeightKey) -> WeightOverride | None:
        return self.weights.pop(key, None)

    def expired(self, now: float) -> list[BackendOverride | WeightOverride]:
        """The overrides whose time is up, taken out."""
        done: list[BackendOverride | WeightOverride] = []
        for name, b in list(self.backends.items()):
            if b.until is not None and b.until <= now:
                done.append(self.backends.pop(name))
        for key, w in list(self.weights.items()):
            if w.until is not None and w.until <= now:
                done.append(self.weights.pop(key))
        return done

    def next_expiry(self) -> float | None:
        times = [b.until for b in self.backends.values() if b.until is not None]
        times += [w.until for w in self.weights.values() if w.until is not None]
        return min(times) if times else None

    def prune(self, config: Config) -> list[str]:
        """Drop what the config no longer has; a line for each."""
        dropped = []
        for name in [n for n in self.backends if n not in config.backends]:
            del self.backends[name]
            dropped.append(f"backend {name}")
        for key in list(self.weights):
            fe = config.frontends.get(key[0])
            pool = next((p for p in fe.pools if p.name == key[1]), None) if fe else None
            if pool is None or key[2] not in pool.backend_names:
                del self.weights[key]
                dropped.append(f"frontend {key[0]} pool {key[1]} backend {key[2]}")
        return dropped

    # --- the state file ------------------------------------------------------------------
    def to_json(self) -> str:
        data = {
            "version": 1,
            "backends": {b.backend: {"action": b.action, "until": b.until} for b in self.backends.values()},
            "weights": [
                {"frontend": k[0], "pool": k[1], "backend": k[2], "weight": w.weight, "until": w.until}
                for k, w in self.weights.items()
            ],
        }
        return json.dumps(data, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Overrides:
        """Raises StateFileError naming what is wrong."""
        try:
            data = json.loads(text)
        except ValueError as e:
            raise StateFileError(f"not JSON: {e}") from None
        if not isinstance(data, dict) or data.get("version") != 1:
            raise StateFileError("not a version 1 overrides file")
        out = cls()
        try:
            for name, b in dict(data.get("backends", {})).items():
                if not isinstance(name, str) or b["action"] not in ACTIONS:
                    raise StateFileError(f"backend {name!r}: action must be one of {', '.join(ACTIONS)}")
                out.set_backend(name, b["action"], _until(b.get("until")))
            for w in list(data.get("weights", [])):
                key = (str(w["frontend"]), str(w["pool"]), str(w["backend"]))
                weight = w["weight"]
                if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 100:
                    raise StateFileError(f"{'/'.join(key)}: weight must be 0..100")
                out.set_weight(key, weight, _until(w.get("until")))
        except (KeyError, TypeError, ValueError) as e:
            raise StateFileError(f"malformed entry ({type(e).__name__}: {e})") from None
        return out


def _until(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"until must be a time or null, got {value!r}")
    return float(value)


def load_state(path: str) -> Overrides:
    """The saved overrides; a missing file is none. Raises StateFileError."""
    if not os.path.lexists(path):
        return Overrides()
    try:
        return Overrides.from_json(read_text(path, MAX_STATE_FILE))
    except FileProblem as e:
        raise StateFileError(str(e)) from None


def save_state(path: str, overrides: Overrides) -> None:
    """Write atomically; raises OSError."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".overrides.", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(overrides.to_json())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
