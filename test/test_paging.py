"""ListBackends' pages and filters, as a table (the servicer maps PageError to codes)."""

from __future__ import annotations

import pytest

from maglev.api.paging import PageError, page, token_for

NAMES = [f"b{i}" for i in range(7)]
STATES = {n: ("down" if n in ("b1", "b4") else "up") for n in NAMES}
MEMBERS = {"web": ["b0", "b1", "b2"], "ssh": ["b5", "b6"]}


def pages(size: int, frontend: str = "", states: tuple[str, ...] = ()) -> list[list[str]]:
    out, token = [], ""
    while True:
        names, token, _ = page(NAMES, STATES, MEMBERS, 3, size, token, frontend, states)
        out.append(names)
        if not token:
            return out


@pytest.mark.parametrize(
    ("size", "frontend", "states", "expected"),
    [
        (0, "", (), [NAMES]),
        (3, "", (), [["b0", "b1", "b2"], ["b3", "b4", "b5"], ["b6"]]),
        (7, "", (), [NAMES]),
        (2, "web", (), [["b0", "b1"], ["b2"]]),
        (2, "", ("down",), [["b1", "b4"]]),
        (1, "web", ("up",), [["b0"], ["b2"]]),
        (5, "ssh", ("down",), [[]]),
    ],
)
def test_pages_cover_every_match_once_in_order(
    size: int, frontend: str, states: tuple[str, ...], expected: list[list[str]]
) -> None:
    assert pages(size, frontend, states) == expected


def test_total_counts_every_match() -> None:
    assert page(NAMES, STATES, MEMBERS, 3, 2, "", "web", ())[2] == 3


@pytest.mark.parametrize(
    ("size", "token", "frontend", "states", "kind", "message"),
    [
        (-1, "", "", (), "invalid", "page_size: must be 0..10000"),
        (10_001, "", "", (), "invalid", "page_size: must be 0..10000"),
        (2, "garbage", "", (), "invalid", "page_token: not one this API gave"),
        (2, token_for("b2", 2), "", (), "reloaded", "reloaded since (generation 2, now 3)"),
        (2, token_for("gone", 3), "", (), "reloaded", "backend 'gone' is no longer listed"),
        (2, "", "nope", (), "not-found", "no such frontend 'nope'"),
        (2, "", "", ("sleepy",), "invalid", "state: unknown 'sleepy'"),
    ],
)
def test_bad_requests_name_the_problem(
    size: int, token: str, frontend: str, states: tuple[str, ...], kind: str, message: str
) -> None:
    with pytest.raises(PageError) as e:
        page(NAMES, STATES, MEMBERS, 3, size, token, frontend, states)
    assert e.value.kind == kind and message in str(e.value)
