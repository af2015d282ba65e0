"""The web UI's plain logic, as tables: ages, health icons, scopes, the event ring, auth parsing."""

from __future__ import annotations

import base64
import csv
import io
from typing import Any

import pytest

from maglev.addresses import AddressError, parse_server
from maglev.ages import format_age
from maglev.api.gen.maglev.v1 import maglev_pb2 as pb
from maglev.web.app import Credentials, choose_scope, same_origin
from maglev.web.broker import EventRing
from maglev.web.export import COLUMNS, stats_rows, to_csv
from maglev.web.page import checks_text, duration, probe_text
from maglev.web.service import remote_names
from maglev.web.view import DaemonState, DaemonStatus, daemon_view, frontend_health


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
        (-3, "now"),
        (59.9, "59s"),
        (3599, "59m59s"),
        (3600 + 59, "1h"),
        (86399, "23h59m"),
        (86400, "1d"),
        (400 * 86400 + 23 * 3600 + 3599, "400d23h"),
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


def stats_state() -> tuple[DaemonStatus, DaemonState]:
    web = pb.FrontendInfo(name="web", address="127.0.2.1", protocol="tcp", port=8080, state="up")
    pool = web.pools.add(name="primary", active=True)
    pool.backends.add(name="web0", address="127.0.1.1", state="up", weight=100, effective_weight=100, buckets=700)
    pool.backends.add(name="web1", address="127.0.1.2", state="down", weight=100, effective_weight=0, buckets=0)
    up = pb.BackendInfo(name="web0", state="up", state_since=900.0, checks=50)
    up.last_probe.code, up.last_probe.detail, up.last_probe.duration, up.last_probe.ok = (
        "L7OK",
        "HTTP 200",
        0.0012,
        True,
    )
    down = pb.BackendInfo(
        name="web1", state="down", state_since=990.0, checks=40, failed_checks=7, downs=2, downtime_seconds=75.5
    )
    counters = pb.VipCounters(
        frontend="web", next=1000, first=10, next_rate=12.5, first_rate=0.25,
        has_route=True, route_packets=1010, route_bytes=64640, route_bytes_rate=800.0,
    )  # fmt: skip
    state = DaemonState(pb.VersionInfo(), [web], {"web0": up, "web1": down}, None, "", {"web": counters})
    return DaemonStatus("lb1", "local", True), state


def test_the_stats_table_has_a_vip_row_then_its_members() -> None:
    status, state = stats_state()
    rows = stats_rows([daemon_view(status, state)], now=1000.0)
    assert [(r["type"], r["backend"]) for r in rows] == [("vip", None), ("backend", "web0"), ("backend", "web1")]
    vip, web0, web1 = rows
    assert vip["vip"] == "127.0.2.1 tcp:8080" and (vip["next"], vip["next_rate"], vip["first_rate"]) == (
        1000,
        12.5,
        0.25,
    )
    assert (web0["in_state_s"], web0["last_check_code"], web0["last_check_ms"], web0["checks"]) == (
        100.0,
        "L7OK",
        1.2,
        50,
    )
    assert (web1["failed_checks"], web1["downs"], web1["downtime_s"], web1["effective_weight"]) == (7, 2, 75.5, 0)
    assert (vip["route_packets"], vip["route_bytes"], vip["route_bytes_rate"]) == (1010, 64640, 800.0)
    assert all(list(r) == list(COLUMNS) for r in rows)
    state.counters["web"].has_route = False  # a VPP whose definitions lack ip_route_lookup
    (vip, *_) = stats_rows([daemon_view(status, state)], now=1000.0)
    assert (vip["route_packets"], vip["route_packets_rate"]) == (None, None) and vip["next"] == 1000


def test_the_stats_csv_is_rfc4180_with_empty_cells_where_nothing_applies() -> None:
    status, state = stats_state()
    text = to_csv(stats_rows([daemon_view(status, state)], now=1000.0))
    lines = text.split("\r\n")
    assert lines[0] == ",".join(COLUMNS) and lines[-1] == ""
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert parsed[0]["backend"] == "" and parsed[0]["next"] == "1000"
    assert parsed[1]["last_check_detail"] == "HTTP 200" and parsed[2]["downtime_s"] == "75.5"


@pytest.mark.parametrize(
    ("b", "probe", "checks", "down"),
    [
        ({"last_probe": None, "checks": 0, "failed_checks": 0, "downtime": 0.0}, "–", "0", "0s"),
        (
            {"last_probe": {"code": "L7OK", "ok": True, "detail": "HTTP 200", "duration": 0.0012},
             "checks": 9, "failed_checks": 0, "downtime": 0.4},
            "L7OK HTTP 200 · 1.2 ms", "9", "0s",
        ),
        (
            {"last_probe": {"code": "", "ok": False, "detail": "", "duration": 1.0},
             "checks": 9, "failed_checks": 3, "downtime": 3725.0},
            "fail · 1000.0 ms", "9 (3 failed)", "1h2m",
        ),
    ],
)  # fmt: skip
def test_page_texts(b: dict[str, Any], probe: str, checks: str, down: str) -> None:
    assert (probe_text(b), checks_text(b), duration(b["downtime"])) == (probe, checks, down)


# The row as the template wrote it before backend_rows took it over (page.html, Jinja2
# with autoescaping): the rows must stay what the page's script and tests expect.
TEMPLATE_ROW = (
    '      <tr data-key="{{ b.key }}" data-backend="{{ b.name }}">{% if admin %}<td><input type="checkbox" '
    'class="pick" aria-label="select {{ b.name }}"></td>{% endif %}<td class="be-name">{{ b.name }}</td>'
    '<td class="be-addr">{{ b.address }}</td><td data-f="state" class="state-{{ b.state }}">{{ b.state }}'
    '{% if b.note %} ({{ b.note }}){% endif %}</td><td data-f="weight">{{ b.weight }}</td>'
    '<td data-f="effective_weight">{{ b.effective_weight }}</td><td data-f="buckets">{{ num(b.buckets) }}</td>'
    '<td class="age" data-f="since" data-since="{{ "%.3f"|format(b.since) }}">{{ age(b.since) }}</td>'
    '<td data-f="probe" class="probe">{{ probe_text(b) }}</td><td data-f="checks">{{ checks_text(b) }}</td>'
    '<td data-f="downs">{{ b.downs }}</td><td data-f="downtime">{{ duration(b.downtime) }}</td>'
    '<td data-f="heartbeat" class="heartbeat">{{ "❤️" if b.in_flight else "·" }}</td>{% if admin %}'
    '<td class="actions"><button type="button" data-op="menu" title="actions">⋮</button></td>{% endif %}</tr>'
)
HOSTILE = "<script>alert('x')</script> & \"quoted\""
ROW = {
    "key": "web/primary/web0", "name": "web0", "address": "192.0.2.10", "state": "up", "weight": 100,
    "effective_weight": 100, "buckets": 65536, "since": 999_000.0, "in_flight": False, "last_probe": None,
    "checks": 0, "failed_checks": 0, "downs": 0, "downtime": 0.0, "note": "",
}  # fmt: skip
ROWS = [
    ("never probed", {}),
    (
        "a hostile probe detail and note",
        {
            "last_probe": {"code": "L7STS", "ok": False, "detail": HOSTILE, "duration": 0.0123},
            "note": HOSTILE,
            "failed_checks": 2,
            "checks": 9,
        },
    ),  # fmt: skip
    ("down for an hour, in flight", {"state": "down", "downs": 3, "downtime": 3725.5, "in_flight": True}),
    ("no buckets known, no since", {"buckets": None, "since": 0.0, "weight": 0, "effective_weight": 0}),
    ("an IPv6 backend", {"address": "2001:db8::10", "name": "v6-a", "key": "v6/p/v6-a"}),
    ("a hostile name, key, address and state", {"name": HOSTILE, "key": HOSTILE, "address": HOSTILE, "state": HOSTILE}),
    ("texts for numbers", {"weight": "–", "effective_weight": "<1>", "downs": "'3'"}),
]


@pytest.mark.parametrize("admin", [False, True])
@pytest.mark.parametrize(("what", "changes"), ROWS, ids=[r[0] for r in ROWS])
def test_backend_rows_are_what_the_template_wrote(what: str, changes: dict[str, Any], admin: bool) -> None:
    import jinja2

    from maglev.web.page import backend_rows, num

    at = 1_000_000.0
    b = {**ROW, **changes}
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    want = env.from_string(TEMPLATE_ROW).render(
        b=b, admin=admin, num=num, probe_text=probe_text, checks_text=checks_text, duration=duration,
        age=lambda since: format_age(at - since) if since else "–",
    )  # fmt: skip
    got = str(backend_rows([b, b], admin, at))
    assert got == want * 2, what
    assert "<script>" not in got and ("&lt;script&gt;" in got) == ("hostile" in what)


@pytest.mark.parametrize("value", ["web0", HOSTILE, "&&<<>>''\"\"", "·❤️ ok", "", 0, 65536, -1, 0.25, "a&b"])
def test_row_texts_are_escaped_as_markupsafe_escapes(value: Any) -> None:
    from markupsafe import escape

    from maglev.web.page import _esc

    assert _esc(value) == str(escape(value))


def test_a_view_memo_rebuilds_only_the_backends_whose_messages_changed() -> None:
    from maglev.web.view import ViewMemo

    memo = ViewMemo()
    status, state = stats_state()
    first = daemon_view(status, state, memo=memo)
    assert first == daemon_view(status, state)
    _, again = stats_state()  # a new read: new messages, the same bytes
    again.backends["web0"].checks = 51  # probed since
    again.backends["web1"].downtime_seconds = 80.0  # down: only its downtime moved
    second = daemon_view(status, again, memo=memo)
    assert second == daemon_view(status, again), "as built afresh"
    (b0, b1), (c0, c1) = (v["frontends"][0]["pools"][0]["backends"] for v in (first, second))
    assert c0 is not b0 and c0["checks"] == 51
    assert c1 is b1 and c1["downtime"] == 80.0, "kept, with the downtime of the latest read"
    assert again.backends["web1"].downtime_seconds == 80.0, "the message is left as it was"
    _, fewer = stats_state()
    del fewer.frontends[0].pools[0].backends[1]
    daemon_view(status, fewer, memo=memo)
    assert len(memo) == 1, "only what the latest read used is kept"


def test_a_row_memo_writes_the_rows_as_the_clock_and_the_downtime_move() -> None:
    from maglev.web.page import RowMemo, backend_rows

    memo = RowMemo()
    down = {**ROW, "name": "web1", "key": "web/primary/web1", "state": "down", "downtime": 75.5, "since": 999_900.0}
    rows = [dict(ROW), down]
    for at, admin in [(1_000_000.0, False), (1_000_100.0, True), (1_003_600.0, False)]:
        assert str(backend_rows(rows, admin, at, memo)) == str(backend_rows(rows, admin, at)), (at, admin)
        memo.rotate()
    down["downtime"] = 3725.0  # as the ViewMemo sets it in the dict it keeps
    got = str(backend_rows(rows, False, 1_003_601.0, memo))
    assert got == str(backend_rows(rows, False, 1_003_601.0)) and '"downtime">1h2m<' in got
    memo.rotate()
    rows[0]["state"] = "changed in place"  # views are never changed but for the downtime: the row is kept
    assert "changed in place" not in str(backend_rows(rows, False, 1_003_601.0, memo))
    memo.rotate()
    backend_rows(rows[:1], False, 1.0, memo)
    memo.rotate()
    assert len(memo) == 1, "only the rows the latest render wrote are kept"


def test_the_page_with_its_memos_is_the_page_without() -> None:
    from maglev.web.page import RowMemo, render_page
    from maglev.web.view import ViewMemo, status_view

    views, rows = ViewMemo(), RowMemo()
    for downtime in (75.5, 75.5, 200.0):
        status, state = stats_state()
        state.backends["web1"].downtime_seconds = downtime
        plain = render_page([status_view(status)], daemon_view(status, state), True, "t", set(), now=1000.0)
        memo = render_page(
            [status_view(status)], daemon_view(status, state, memo=views), True, "t", set(), now=1000.0, memo=rows
        )
        assert memo == plain and len(rows) == 2


# The frontend sections and the counter rows as the template wrote them before
# frontend_sections and counter_rows took them over (page.html, Jinja2 with autoescaping
# and trim_blocks): the page must stay what the page's script and tests expect.
TEMPLATE_SECTIONS = """\
{%- for fe in frontends %}
<details class="frontend" data-fe="{{ fe['name'] }}"{% if fe['name'] not in closed %} open{% endif %}>
  <summary><span class="fe-name">{{ fe['name'] }}</span> <span class="fe-addr">{{ fe['address'] }} \
{{ fe['protocol'] }}/{{ fe['port'] }}</span> <span data-f="fe-state" class="badge state-{{ fe['state'] }}">\
{{ fe['state'] }}</span> <span class="health" data-f="fe-health" title="{{ fe['health_label'] }}">\
{{ fe['health_icon'] }}</span> <span class="fe-desc">{{ fe['description'] }}</span>{% if fe['consistency'] %} \
<span class="consistency {{ "agree" if fe['consistency']['consistent'] else "differ" }}" data-f="consistency" \
title="{{ fe['consistency']['digests']|dictsort|map('join', ': ')|join(', ') }}">\
{{ "tables agree" if fe['consistency']['consistent'] else "tables DIFFER" }}</span>{% endif %}</summary>
  {%- if fe['consistency'] and not fe['consistency']['consistent'] %}
  <ul class="differences" data-f="differences">{% for x in fe['consistency']['differences'] %}<li>{{ x }}</li>\
{% endfor %}</ul>
  {%- endif %}
  <div class="vip-table" data-f="table" data-table="{{ fe['table']|tojson|forceescape }}"></div>
  {%- for pool in fe['pools'] %}
  <table class="pool">
    <caption>{{ pool['name'] }}{% if pool['active'] %} <span class="active">active</span>{% endif %}</caption>
    <thead><tr>{% if admin %}<th></th>{% endif %}<th>backend</th><th>address</th><th>state</th>\
<th title="configured weight">weight</th><th title="weight given to VPP">effective</th>\
<th title="VPP new-flow buckets">buckets</th><th title="time in the current state">in state</th><th>last check</th>\
<th title="checks answered, of them failed">checks</th><th title="up to down transitions">downs</th>\
<th title="time spent down">downtime</th><th title="probe in flight">♥</th>{% if admin %}<th></th>{% endif %}\
</tr></thead>
    <tbody>
    {{- rows(pool['backends']) -}}
    </tbody>
  </table>
  {%- endfor %}
  {%- if fe['draining'] %}
  <ul class="draining">
  {%- for d in fe['draining'] %}
    <li><span class="state-draining">draining</span> {{ d['address'] }}{% if d['backend'] %} ({{ d['backend'] }})\
{% endif %}: {{ d['why'] }}, weight 0, {{ d['seconds_left'] }} s left</li>
  {%- endfor %}
  </ul>
  {%- endif %}
</details>
{%- endfor %}"""
TEMPLATE_COUNTERS = """\
    {%- for fe in frontends %}{% set c = fe['counters'] or NO_COUNTERS %}
      <tr data-counter="{{ fe['name'] }}"><td>{{ fe['name'] }}</td>\
{% for k in ("next", "first", "untracked", "no_server", "route_packets", "route_bytes") %}<td>\
<span data-f="{{ k }}">{{ num(c[k]) }}</span> <small class="rate" data-f="{{ k }}_rate">{{ rate(c, k) }}</small></td>\
{% endfor %}</tr>
    {%- endfor %}"""


def layout_only(html: str) -> str:
    """The HTML without the whitespace that only lays the source out: newlines and runs of
    spaces between tags (a single space between two tags is text, and kept)."""
    import re

    return re.sub(r">(?:\s{2,}|\s*\n\s*)<", "><", html).strip()


def sections_state(text: str) -> tuple[DaemonState, dict[str, Any]]:
    """Three frontends with every part a section can have, their texts ``text`` + a number."""
    from maglev.web.consistency import VipConsistency, vip_of

    fes = []
    for k, (address, state) in enumerate([("127.0.2.1", "up"), ("2001:db8::1", "down"), ("127.0.2.3", "unknown")]):
        fe = pb.FrontendInfo(
            name=f"{text}{k}", address=address, protocol="tcp", port=80 + k, state=state, description=text,
            state_detail=f"detail {text}" if k == 0 else "",
        )  # fmt: skip
        for p in range(2 if k == 0 else 1):
            pool = fe.pools.add(name=f"{text}p{p}", active=p == 0)
            for j in range(2):
                pool.backends.add(name=f"b{k}{p}{j}", address=f"10.0.{k}.{j}", state="up" if j else "down", weight=100)
        fes.append(fe)
    t = fes[0].table
    t.known, t.digest, t.length, t.weights = True, "abc", 7, True
    t.shares.add(address="10.0.0.1", backend=f"b001{text}", buckets=3, bucket_share=0.5, weight_share=0.5, vpp_weight=3)
    fes[2].draining.add(address="10.9.9.9", backend=f"gone{text}", pool="p0", seconds_left=12.4, why="removed")
    fes[2].draining.add(address="10.9.9.8", pool="p0", seconds_left=1.6, why=f"why {text}")
    counters = {
        fes[0].name: pb.VipCounters(next=1000, first=10, next_rate=12.5, has_route=True, route_bytes_rate=800.0),
        fes[1].name: pb.VipCounters(next=1, first=1),
    }
    members = [b for f in fes for p in f.pools for b in p.backends]
    backends = {b.name: pb.BackendInfo(name=b.name, state=b.state, state_since=900.0) for b in members}
    v0, v1 = vip_of(fes[0]), vip_of(fes[1])
    consistency = {
        v0: VipConsistency(v0, {"lb2": f"x{text}", "Lb1": "y", "a": "z"}, {}, [f"differs {text}", "two"]),
        v1: VipConsistency(v1, {"lb2": "x", "lb1": "x"}),
    }
    return DaemonState(pb.VersionInfo(), fes, backends, None, "", counters), consistency


@pytest.mark.parametrize("admin", [False, True])
@pytest.mark.parametrize("text", ["web", HOSTILE])
@pytest.mark.parametrize("closed", [(), (0,), (0, 1, 2)])
@pytest.mark.parametrize("compared", [False, True])
def test_frontend_sections_are_what_the_template_wrote(
    admin: bool, text: str, closed: tuple[int, ...], compared: bool
) -> None:
    import jinja2

    from maglev.web.page import NO_COUNTERS, backend_rows, counter_rows, frontend_sections, num, rate

    at = 1_000.0
    state, consistency = sections_state(text)
    frontends = daemon_view(DaemonStatus("lb1", "local", True), state, consistency if compared else None)["frontends"]
    shut = {frontends[i]["name"] for i in closed}
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True)
    want = env.from_string(TEMPLATE_SECTIONS).render(
        frontends=frontends, admin=admin, closed=shut, rows=lambda b: backend_rows(b, admin, at)
    )
    got = str(frontend_sections(frontends, admin, shut, at))
    assert layout_only(got) == layout_only(want)
    assert ("tables DIFFER" in got) == compared and ('class="frontend" data-fe="' in got)
    assert got.count(" open>") == 3 - len(closed)
    want = env.from_string(TEMPLATE_COUNTERS).render(frontends=frontends, num=num, rate=rate, NO_COUNTERS=NO_COUNTERS)
    got = str(counter_rows(frontends))
    assert layout_only(got) == layout_only(want) and got.count("<tr data-counter=") == 3
    if text == HOSTILE:
        assert "<script>" not in str(frontend_sections(frontends, admin, shut, at)) + got
