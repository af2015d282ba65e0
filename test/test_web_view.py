"""The web UI's plain logic, as tables: ages, health icons, scopes, the event ring, auth parsing."""

from __future__ import annotations

import base64

import pytest

from maglev.addresses import AddressError, parse_server
from maglev.ages import format_age
from maglev.api.gen.maglev.v1 import maglev_pb2 as pb
from maglev.web.app import Credentials, choose_scope, same_origin
from maglev.web.broker import EventRing
from maglev.web.service import remote_names
from maglev.web.view import frontend_health


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "now"),
        (0.99, "now"),
        (1, "1s"),
        (42, "42s"),
        (60, "1m"),
        (630, "10m30s"),
        (3600, "1h"),
        (3600 + 12 * 60 + 59, "1h12m"),
        (86400 + 16 * 3600 + 5, "1d16h"),
        (2 * 86400 + 30, "2d"),
    ],
)
def test_format_age(seconds: float, text: str) -> None:
    assert format_age(seconds) == text


def fe(state: str, *pools: tuple[bool, list[tuple[int, int]]]) -> pb.FrontendInfo:
    """pools: (active, [(configured weight, effective weight), ...])"""
    info = pb.FrontendInfo(name="web", state=state)
    for i, (active, members) in enumerate(pools):
        p = info.pools.add(name=f"p{i}", active=active)
        for j, (w, ew) in enumerate(members):
            p.backends.add(name=f"b{i}{j}", weight=w, effective_weight=ew)
    return info


@pytest.mark.parametrize(
    ("info", "health"),
    [
        (fe("up", (True, [(100, 100), (100, 100)]), (False, [(100, 0)])), "healthy"),
        (fe("up", (True, [(100, 100), (100, 0)])), "degraded"),
        (fe("up", (True, [(100, 100), (0, 0)])), "healthy"),  # an operator's weight 0 is not a fault
        (fe("up", (False, [(100, 0)]), (True, [(100, 100)])), "fallback"),
        (fe("down", (True, [(100, 0)]), (False, [(100, 0)])), "none"),
        (fe("unknown", (True, [(100, 100)])), "unknown"),
        (fe("up"), "unknown"),
        (fe("unsupported", (True, [(100, 0)])), "unsupported"),  # not programmed, whatever the weights
    ],
)
def test_frontend_health(info: pb.FrontendInfo, health: str) -> None:
    assert frontend_health(info) == health


@pytest.mark.parametrize(
    ("asked", "cookie", "shown", "set_cookie"),
    [
        (None, None, "a", False),
        ("b", None, "b", True),
        ("b", "b", "b", False),
        (None, "b", "b", False),
        ("nope", "b", "b", False),  # an unknown ?scope= is ignored
        (None, "gone", "a", True),  # a cookie naming a daemon that left falls back, and is replaced
        ("nope", None, "a", False),
    ],
)
def test_choose_scope(asked: str | None, cookie: str | None, shown: str, set_cookie: bool) -> None:
    assert choose_scope(["a", "b"], asked, cookie) == (shown, set_cookie)


@pytest.mark.parametrize(
    ("origin", "host", "secure", "ok"),
    [
        ("http://lb1:8080", "lb1:8080", False, True),
        ("https://lb1:8080", "lb1:8080", True, True),
        ("https://lb1:8080", "lb1:8080", False, False),
        ("http://evil.example", "lb1:8080", False, False),
        ("null", "lb1:8080", False, False),
    ],
)
def test_same_origin(origin: str, host: str, secure: bool, ok: bool) -> None:
    assert same_origin(origin, host, secure) is ok


def basic(text: str) -> bytes:
    return b"Basic " + base64.b64encode(text.encode())


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (basic("admin:s3cret:x"), True),  # the password may contain ':'
        (basic("admin:s3cret"), False),
        (basic("admin:"), False),
        (basic("Admin:s3cret:x"), False),
        (b"basic " + base64.b64encode(b"admin:s3cret:x"), True),
        (b"Bearer abc", False),
        (b"Basic !!!", False),
        (None, False),
    ],
)
def test_credentials(header: bytes | None, ok: bool) -> None:
    assert Credentials("admin", "s3cret:x").check(header) is ok


def test_ring_replays_what_was_missed() -> None:
    now = [1000.0]
    ring = EventRing(clock=lambda: now[0], max_events=5, epoch=7)
    ids = [ring.add("backend", {"n": i}).id for i in range(4)]
    assert ids[0] == "7-1"
    assert [e.id for e in ring.since(ids[1]) or []] == ids[2:]
    assert ring.since(ids[-1]) == []
    assert ring.since("8-1") is None, "another process's id (a restart) resyncs"
    assert ring.since("7-99") is None, "an id from the future resyncs"
    assert ring.since("garbage") is None


def test_ring_resyncs_when_the_gap_left_the_ring() -> None:
    now = [1000.0]
    ring = EventRing(clock=lambda: now[0], max_events=3, epoch=1)
    for i in range(5):
        ring.add("backend", {"n": i})
    assert ring.since("1-1") is None, "events 2 and 3 are gone (count)"
    assert [e.seq for e in ring.since("1-2") or []] == [3, 4, 5]
    now[0] += 31
    assert ring.since("1-4") is None, "event 5 is gone (age)"
    assert ring.since("1-5") == [], "nothing was missed"


@pytest.mark.parametrize(
    ("addresses", "names"),
    [
        (["lb1.example.net:9090", "lb2:9090"], ["lb1.example.net", "lb2"]),
        (["127.0.0.1:9090", "127.0.0.1:9091"], ["127.0.0.1:9090", "127.0.0.1:9091"]),
        (["[::1]:9090"], ["::1"]),
    ],
)
def test_remote_names(addresses: list[str], names: list[str]) -> None:
    assert remote_names(addresses) == names


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("lb1:9090", None),
        ("[2001:db8::1]:9090", None),
        ("lb1", "expected HOST:PORT"),
        (":9090", "expected HOST:PORT"),
        ("::1:9090", "brackets"),
        ("[zz]:9090", "is not an IPv6 address"),
        ("lb1:0", "port must be 1..65535"),
        ("lb1:http", "port must be 1..65535"),
    ],
)
def test_parse_server(text: str, error: str | None) -> None:
    if error is None:
        assert parse_server(text) == text
    else:
        with pytest.raises(AddressError, match=error):
            parse_server(text)
