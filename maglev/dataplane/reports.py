"""What backends say of themselves (their agents, exec checks' dynamic weights), by source. Pure.

The dataplane follows the combination (health/report.py): the strictest state and the
lowest weight of a backend's sources. A source that says nothing more (ready, 100%)
is forgotten.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from ..config import Config, ExecParams
from ..health.report import NEUTRAL, Report, combined


class Reports:
    def __init__(self) -> None:
        self._by_source: dict[str, dict[str, Report]] = {}
        self._effective: dict[str, Report] = {}
        self.effective: Mapping[str, Report] = MappingProxyType(self._effective)  # backend -> what counts

    def set(self, backend: str, source: str, report: Report) -> bool:
        """Record a source's word; True when what counts for the backend changed."""
        sources = self._by_source.setdefault(backend, {})
        if report.neutral:
            sources.pop(source, None)
        else:
            sources[source] = report
        before = self._effective.get(backend)
        now = combined(sources) if sources else None
        if not sources:
            self._by_source.pop(backend, None)
        if now is None or now.neutral:
            self._effective.pop(backend, None)
            return before is not None
        self._effective[backend] = now
        return before != now

    def forget(self, backends: Iterable[str]) -> None:
        """Backends that are gone (a reload): nothing they said counts any more."""
        for b in backends:
            self._by_source.pop(b, None)
            self._effective.pop(b, None)

    def reconfigured(self, cfg: Config) -> None:
        """What a reload leaves standing: nothing of backends gone, of agents removed, or of
        checks that no longer give a dynamic weight."""
        for backend in list(self._by_source):
            b = cfg.backends.get(backend)
            if b is None:
                self.forget([backend])
                continue
            hc = cfg.healthchecks.get(b.healthcheck)
            dynamic = hc is not None and isinstance(hc.params, ExecParams) and hc.params.dynamic_weight
            if b.agent is None:
                self.set(backend, "agent", NEUTRAL)
            if not dynamic:
                self.set(backend, "exec", NEUTRAL)

    def of(self, backend: str) -> tuple[Report | None, tuple[str, ...]]:
        """What counts for the backend and who said it (for the API)."""
        return self._effective.get(backend), tuple(sorted(self._by_source.get(backend, {})))


__all__ = ["Reports"]
