"""ListBackends' pages and filters. Pure: no grpc (the servicer maps the errors to codes).

A page token names the last backend of the page before and the configuration generation
it was made under (base64 of a small JSON object): the next page starts after that backend,
and a reload in between is said rather than silently skipping or repeating backends.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence

MAX_PAGE = 10_000
STATES = ("up", "down", "unknown", "paused", "disabled")


class PageError(ValueError):
    """A bad request (a code for it: ``kind`` is invalid, not-found or reloaded)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def token_for(after: str, generation: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after, "g": generation}).encode()).decode()


def _after(token: str, generation: int) -> str:
    try:
        t = json.loads(base64.urlsafe_b64decode(token.encode()))
        after, made = t["after"], t["g"]
        if not isinstance(after, str) or not isinstance(made, int):
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise PageError("invalid", "page_token: not one this API gave") from None
    if made != generation:
        raise PageError(
            "reloaded", f"page_token: the configuration was reloaded since (generation {made}, now {generation}): "
            "list again from the first page",
        )  # fmt: skip
    return after


def page(
    names: Sequence[str],
    states: Mapping[str, str],
    members: Mapping[str, Sequence[str]] | None,
    generation: int,
    page_size: int,
    page_token: str,
    frontend: str,
    wanted_states: Sequence[str],
) -> tuple[list[str], str, int]:
    """(the page's backend names, the next page's token or "", how many match).

    ``members``: each frontend's backends (to filter by ``frontend``)."""
    if not 0 <= page_size <= MAX_PAGE:
        raise PageError("invalid", f"page_size: must be 0..{MAX_PAGE} (0: all), got {page_size}")
    unknown = [s for s in wanted_states if s not in STATES]
    if unknown:
        raise PageError("invalid", f"state: unknown {', '.join(map(repr, unknown))} (one of {', '.join(STATES)})")
    chosen: Sequence[str] = names
    if frontend:
        if members is None or frontend not in members:
            raise PageError("not-found", f"no such frontend {frontend!r}")
        of_it = set(members[frontend])
        chosen = [n for n in chosen if n in of_it]
    if wanted_states:
        keep = set(wanted_states)
        chosen = [n for n in chosen if states.get(n) in keep]
    total = len(chosen)
    start = 0
    if page_token:
        after = _after(page_token, generation)
        try:
            start = list(chosen).index(after) + 1
        except ValueError:
            raise PageError("reloaded", f"page_token: backend {after!r} is no longer listed: list again") from None
    if page_size == 0:
        return list(chosen[start:]), "", total
    out = list(chosen[start : start + page_size])
    more = start + page_size < len(chosen)
    return out, token_for(out[-1], generation) if more and out else "", total


__all__ = ["MAX_PAGE", "PageError", "STATES", "page", "token_for"]
