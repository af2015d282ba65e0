"""What a backend says of itself: its agent's line, an exec check's dynamic weight. Pure.

HAProxy's agent-check protocol: the agent answers one line of words separated by
spaces, commas or tabs; those that matter here are a state (``up``, ``ready``, ``drain``,
``maint``, ``down``, ``fail``, ``stopped``) and a weight (``75%``). Others (``maxconn:30``)
are ignored, as HAProxy ignores what it does not know.

A report changes what the dataplane is given for the backend, never its health state:

| report | in VPP |
|---|---|
| ``ready`` / ``up`` (or nothing) | as its health says |
| ``N%`` | its configured weight scaled by N% (an operator's weight wins) |
| ``drain`` | weight 0, no flush: no new flows, established ones stay |
| ``maint`` | weight 0 with a flush, as an operator's disable |
| ``down`` / ``fail`` / ``stopped`` | weight 0, flushed as the frontend's ``flush-on-down`` says |

Several sources (the agent, an exec check) combine to the strictest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

READY, DRAIN, MAINT, DOWN = "ready", "drain", "maint", "down"
STATES = {"ready": READY, "up": READY, "drain": DRAIN, "maint": MAINT, "down": DOWN, "fail": DOWN, "stopped": DOWN}
STRICTNESS = {READY: 0, DRAIN: 1, DOWN: 2, MAINT: 3}
PERCENT = re.compile(r"^(\d{1,3})%$")


@dataclass(frozen=True)
class Report:
    state: str = READY
    percent: int = 100  # of the configured weight

    def __str__(self) -> str:
        parts = [] if self.state == READY else [self.state]
        if self.percent != 100:
            parts.append(f"{self.percent}%")
        return " ".join(parts) or "ready"

    @property
    def neutral(self) -> bool:
        return self.state == READY and self.percent == 100


NEUTRAL = Report()


class AgentWordError(ValueError):
    """An agent line with nothing we can use; the message says what it was."""


def parse_agent(line: str) -> Report:
    """The report in an agent's line; AgentWordError when it holds no state and no weight."""
    state: str | None = None
    percent: int | None = None
    for word in re.split(r"[\s,]+", line.strip().lower()):
        if not word:
            continue
        if word in STATES:
            state = STATES[word]
        elif m := PERCENT.match(word):
            percent = min(int(m.group(1)), 100)
    if state is None and percent is None:
        shown = line.strip()[:60]
        raise AgentWordError(f"no state or weight in the agent's answer {shown!r}")
    return Report(state or READY, 100 if percent is None else percent)


def combined(reports: Mapping[str, Report]) -> Report:
    """One backend's reports from several sources, as one: the strictest state, the lowest weight."""
    if not reports:
        return NEUTRAL
    state = max((r.state for r in reports.values()), key=STRICTNESS.__getitem__)
    return Report(state, min(r.percent for r in reports.values()))


def scaled(weight: int, percent: int) -> int:
    """A configured weight scaled by a report's percentage (a weight above 0 stays above 0
    unless the percentage is 0, so 1% of a small weight still takes flows)."""
    if percent >= 100 or weight == 0:
        return weight
    if percent <= 0:
        return 0
    return max(1, round(weight * percent / 100))


__all__ = ["AgentWordError", "NEUTRAL", "Report", "combined", "parse_agent", "scaled"]
