"""Configuration errors: every problem names its YAML path and line."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class ErrorKind(Enum):
    """Which validation stage found the problems; decides the --check exit code."""

    STRUCTURAL = 1  # YAML syntax, unknown keys, wrong types
    SEMANTIC = 2  # references, families, ranges across fields

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line is not None else ""
        return f"{self.path}: {self.message}{where}"


class ConfigError(Exception):
    """All the problems of one stage of one file, reported together."""

    def __init__(self, kind: ErrorKind, problems: list[Problem]) -> None:
        if not problems:
            raise ValueError("ConfigError needs at least one problem")
        self.kind = kind
        self.problems = tuple(sorted(problems, key=_order))
        super().__init__(str(self))

    def __str__(self) -> str:
        head = f"{self.kind.label} error" + ("s" if len(self.problems) > 1 else "")
        return head + ":\n" + "\n".join(f"  {p}" for p in self.problems)


def _order(p: Problem) -> tuple[int, str, str]:
    return (p.line if p.line is not None else 0, p.path, p.message)


class ProblemList:
    """Collects problems so one pass reports all of them (buildbot's capture_config_errors)."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: str, message: str, line: int | None) -> None:
        self.problems.append(Problem(path, message, line))

    def __bool__(self) -> bool:
        return bool(self.problems)

    def raise_if_any(self, kind: ErrorKind) -> None:
        if self.problems:
            raise ConfigError(kind, self.problems)
