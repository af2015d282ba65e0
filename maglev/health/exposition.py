"""The per-backend metric families as Prometheus text, written a backend at a time
(why by hand: maglev/exposition.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import accumulate
from typing import TYPE_CHECKING

from ..exposition import Family, label_value, number, pieces
from ..states import BackendState

if TYPE_CHECKING:
    from .view import BackendStatus

PROBES = "maglev_probe"
DURATION = "maglev_probe_duration_seconds"
STATE = "maglev_backend_state"
COUNTER = "maglev_backend_health"
ENABLED = "maglev_backend_enabled"
TRANSITIONS = "maglev_backend_transitions"

# in the order they are written
FAMILIES = {
    f.name: f
    for f in (
        Family(PROBES, "counter", "probes by backend, type, result and code"),
        Family(DURATION, "histogram", "probe duration"),
        Family(STATE, "gauge", "1 for the backend's current state"),
        Family(COUNTER, "gauge", "HAProxy health counter (0..rise+fall-1)"),
        Family(ENABLED, "gauge", "1 when the backend is enabled"),
        Family(TRANSITIONS, "counter", "backend state transitions"),
    )
}


class BackendFamilies:
    """One scrape's per-backend families: ``add`` each backend, then ``text``.

    ``wanted`` says which families to write (by the names above); the others cost nothing.
    Lines are kept per family, since each family's series must follow its own header.
    """

    def __init__(self, bounds: Iterable[float], wanted: Callable[[str], bool], openmetrics: bool) -> None:
        self.openmetrics = openmetrics
        self.families = [name for name in FAMILIES if wanted(name)]
        self.lines: dict[str, list[str]] = {name: [] for name in self.families}
        # A histogram's bucket lines end with the bound: le="0.001"} and so on, +Inf last.
        self.bucket_ends = [f',le="{b}"}} ' for b in bounds] + [',le="+Inf"} ']
        self.states = [(s, f',state="{s.value}"}} ') for s in BackendState]

    def add(self, b: BackendStatus) -> None:
        name = label_value(b.name)
        kind = label_value(b.check_type)
        lines = self.lines
        if PROBES in lines:
            out = lines[PROBES]
            prefix = f'{PROBES}_total{{backend="{name}",type="{kind}",result='
            for (ok, code), n in b.results.items():
                out.append(f'{prefix}"{"success" if ok else "failure"}",code="{label_value(code)}"}} {n}\n')
        if DURATION in lines:
            prefix = f'{DURATION}_bucket{{backend="{name}",type="{kind}"'
            counts = list(accumulate(b.duration_counts))
            out = lines[DURATION]
            out.extend(f"{prefix}{end}{n}\n" for end, n in zip(self.bucket_ends, counts, strict=True))
            out.append(f'{DURATION}_count{{backend="{name}",type="{kind}"}} {counts[-1]}\n')
            out.append(f'{DURATION}_sum{{backend="{name}",type="{kind}"}} {number(b.duration_sum)}\n')
        if STATE in lines:
            prefix = f'{STATE}{{backend="{name}",healthcheck="{label_value(b.healthcheck)}"'
            lines[STATE].extend(f"{prefix}{end}{1 if b.state is s else 0}\n" for s, end in self.states)
        if COUNTER in lines:
            lines[COUNTER].append(f'{COUNTER}{{backend="{name}"}} {b.counter}\n')
        if ENABLED in lines:
            lines[ENABLED].append(f'{ENABLED}{{backend="{name}"}} {1 if b.enabled else 0}\n')

    def add_transitions(self, counts: Iterable[tuple[tuple[str, str, str], int]]) -> None:
        """Transitions so far, by (backend, from, to)."""
        if TRANSITIONS in self.lines:
            self.lines[TRANSITIONS].extend(
                f'{TRANSITIONS}_total{{backend="{label_value(backend)}",from="{old}",to="{new}"}} {n}\n'
                for (backend, old, new), n in counts
            )

    def pieces(self, lines_per_piece: int = 2000) -> Iterator[str]:
        """The text, in pieces of at most ``lines_per_piece`` lines."""
        yield from pieces(((FAMILIES[n], self.lines[n]) for n in self.families), self.openmetrics, lines_per_piece)

    def text(self) -> str:
        return "".join(self.pieces())


__all__ = ["FAMILIES", "BackendFamilies"]
