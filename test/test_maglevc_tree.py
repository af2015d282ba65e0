"""maglevc's grammar: tables of command lines and what they mean, complete to, or fail with."""

from __future__ import annotations

import pytest

from maglev.maglevc.tree import ParseError, candidates, help_lines, parse

PARSES = [
    ("show version", "show_version", {}, set()),
    ("sh ba", "show_backends", {}, set()),  # an abbreviation of backend/backends means the list
    ("show backend web0", "show_backend", {"backend": "web0"}, set()),  # exact match wins
    ("sh backends web0", "show_backend", {"backend": "web0"}, set()),
    ("sh fr", "show_frontends", {}, set()),
    ("show frontend web", "show_frontend", {"frontend": "web"}, set()),
    ("show healthcheck http", "show_healthcheck", {"healthcheck": "http"}, set()),
    ("sh vpp lb co", "vpp_lb_counters", {}, set()),
    ("show vpp info", "vpp_info", {}, set()),
    ("sync vpp lb state", "sync", {}, set()),
    ("sync vpp lb state frontend web", "sync", {"frontend": "web"}, set()),
    ("set backend web0 pause", "backend_pause", {"backend": "web0"}, set()),
    ("set backend web0 dis", "backend_disable", {"backend": "web0"}, set()),
    (
        "set frontend web pool primary backend web1 weight 0 flush",
        "set_weight",
        {"frontend": "web", "pool": "primary", "backend": "web1", "weight": "0"},
        {"flush"},
    ),
    (
        "set frontend web pool primary backend web1 weight 100",
        "set_weight",
        {"frontend": "web", "pool": "primary", "backend": "web1", "weight": "100"},
        set(),
    ),
    ("preview backend web0 pause", "preview_backend_pause", {"backend": "web0"}, set()),
    (
        "preview frontend web pool primary backend web1 weight 0 flush",
        "preview_set_weight",
        {"frontend": "web", "pool": "primary", "backend": "web1", "weight": "0"},
        {"flush"},
    ),
    ("preview reload", "preview_reload", {}, set()),
    ("config check", "config_check", {}, set()),
    ("conf rel", "config_reload", {}, set()),
    ("watch events", "watch", {}, set()),
    ("watch events num 3 backend", "watch", {"num.num": "3"}, {"num", "backend"}),
    ("watch events log level debug frontend", "watch", {"log.level": "debug"}, {"log", "log.level", "frontend"}),
    ("watch events log", "watch", {}, {"log"}),
    ("quit", "quit", {}, set()),
    ("exit", "quit", {}, set()),
]


@pytest.mark.parametrize(("line", "action", "args", "flags"), PARSES)
def test_parse(line: str, action: str, args: dict[str, str], flags: set[str]) -> None:
    p = parse(line.split())
    assert (p.action, p.args, p.flags) == (action, args, flags)


ERRORS = [
    ("show bogus", "unknown 'bogus' after show"),
    ("bogus", "unknown 'bogus' after the start"),
    ("show", "incomplete command; next:"),
    ("set backend web0", "incomplete command; next: pause, resume, enable, disable"),
    ("set backend web0 jump", "unknown 'jump' after set backend web0"),
    ("s", "ambiguous 's': set, show, sync"),
    ("set frontend web pool p backend b weight 101", "weight 101 is out of 0..100"),
    ("set frontend web pool p backend b weight x", "'x' is not a number"),
    ("watch events num many", "'many' is not a number"),
    ("watch events num", "'num' needs <count>"),
    ("watch events log level loud", "'loud' is not a log level"),
    ("watch events sideways", "unknown option 'sideways'"),
    ("show version now", "unknown 'now' after show version; expected nothing more"),
]


@pytest.mark.parametrize(("line", "message"), ERRORS)
def test_errors_name_the_token(line: str, message: str) -> None:
    with pytest.raises(ParseError) as e:
        parse(line.split())
    assert message in str(e.value)


NAMES = {"backend": ["web0", "web1", "spare0"], "frontend": ["web", "web-any"], "pool": ["primary", "fallback"]}

COMPLETIONS = [
    ("", ["config", "exit", "preview", "quit", "release", "set", "show", "sync", "watch"]),
    ("set backend web0 pause ", ["for"]),
    ("rel", ["release"]),
    ("sh", ["show"]),
    ("show ", ["backend", "backends", "frontend", "frontends", "healthcheck", "healthchecks", "version", "vpp"]),
    ("show backend w", ["web0", "web1"]),  # live names
    ("sh ba ", ["spare0", "web0", "web1"]),
    ("set frontend web pool ", ["fallback", "primary"]),
    ("set backend web0 ", ["disable", "enable", "pause", "resume"]),
    ("watch events ", ["backend", "frontend", "log", "num", "vpp"]),
    ("show nonsense ", []),
]


@pytest.mark.parametrize(("line", "expected"), COMPLETIONS)
def test_completion(line: str, expected: list[str]) -> None:
    assert candidates(line, lambda kind: NAMES.get(kind, [])) == expected


def test_help_lists_the_next_token_with_words() -> None:
    lines = help_lines("show vpp ")
    assert [line.split()[0] for line in lines] == ["info", "lb"]
    assert "VPP version" in lines[0]
    assert help_lines("show version ")[-1].split()[:2] == ["<enter>", "print"]  # what Enter will do


def names_of(kind: str) -> list[str]:
    return NAMES.get(kind, [])


def test_help_in_argument_positions_explains_and_names() -> None:
    at_backend = help_lines("set backend ", names_of)
    assert at_backend[0].split()[:2] == ["<backend", "name>"] and "a backend of the configuration" in at_backend[0]
    assert at_backend[1].strip() == "web0, web1, spare0"  # the names there are
    weight = help_lines("set frontend web pool primary backend web1 weight ", names_of)
    assert weight[0].split()[:2] == ["<weight", "0-100>"] and "weight VPP is given" in weight[0]
    partial = help_lines("show ba", names_of)  # after a partial word: what it may be
    assert [line.split()[0] for line in partial] == ["backends", "backend"]
    done = help_lines("set frontend web pool primary backend web1 weight 30 ", names_of)
    assert any(line.split()[0] == "<enter>" and "set the pool member's weight" in line for line in done)
    assert any(line.split()[0] == "flush" for line in done)
    preview = help_lines("preview backend web0 pause ", names_of)
    assert "change nothing" in preview[-1]
    assert help_lines("set frontend web pool ", names_of)[0].split()[:2] == ["<pool", "name>"]


def test_ages_never_say_now_ago() -> None:
    from maglev.maglevc.out import ago

    assert ago(100.0, 100.4) == "just now"
    assert ago(100.0, 142.0) == "42s ago"
    assert ago(0.0, 3600.0 + 12 * 60) == "1h12m ago"
