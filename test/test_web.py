"""The Klein application in-process: routes, auth, escaping, CSRF, scopes and the event stream.

A real servicer (over real health and sync services, not started) answers
through LocalStub, so every action takes the same path as in maglevd; HTTP
goes over a real socket on loopback.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any, cast

import pytest
import pytest_twisted
import treq
from twisted.internet import defer, protocol
from twisted.internet import reactor as _reactor
from twisted.internet.task import Clock

from maglev.api.local import LocalStub
from maglev.api.servicer import MaglevServicer
from maglev.bus import EventBus
from maglev.config import load_config
from maglev.configservice import ConfigService
from maglev.dataplane.service import LbSync
from maglev.health.service import HealthService
from maglev.web.app import Credentials, WebApp
from maglev.web.broker import EventRing
from maglev.web.service import WebSite, web_resource
from maglev.web.source import DaemonSource
from maglev.web.sse import EventHub

from .helpers import MINIMAL

reactor: Any = _reactor
EVIL = "<script>alert(1)</script>"
CONFIG = MINIMAL.replace("      port: 80\n", f"      port: 80\n      description: '{EVIL}'\n", 1)
AUTH = {"Authorization": "Basic " + base64.b64encode(b"admin:pw").decode()}


def states_of(health: HealthService) -> Mapping[str, str]:
    return health.view.states


class Site_:
    """A WebApp with daemons ``alpha`` and ``beta`` (each a real servicer), served on loopback."""

    def __init__(self, credentials: Credentials | None) -> None:
        self.clock = Clock()
        self.hub = EventHub(EventRing(), self.clock)
        self.web = WebApp(self.hub, credentials)
        self.servicers: dict[str, MaglevServicer] = {}
        self.lbsyncs: list[LbSync] = []
        for name in ("alpha", "beta"):
            cfg = load_config(CONFIG)
            bus = EventBus()
            config = ConfigService("/nonexistent.yaml", cfg, bus, reactor)
            health = HealthService(cfg, bus, Clock())
            lbsync = LbSync(cfg, bus, reactor, states_of(health), api_addr="", stats_addr="", api_dir=None)
            lbsync.startService()  # VPP off: it only follows the health states
            self.lbsyncs.append(lbsync)
            self.servicers[name] = s = MaglevServicer(config, health, lbsync, bus, started=0.0)
            self.web.add_source(DaemonSource(name, "local", LocalStub(s), self.web.on_event, self.web.on_status, False))
        self.port = reactor.listenTCP(0, WebSite(web_resource(self.web)), interface="127.0.0.1")
        self.base = f"http://127.0.0.1:{self.port.getHost().port}"
        self.hub.start()

    async def close(self) -> None:
        self.hub.stop()
        for lbsync in self.lbsyncs:
            lbsync.stopService()
        await self.port.stopListening()


@pytest_twisted.async_yield_fixture
async def site() -> AsyncIterator[Site_]:
    s = Site_(Credentials("admin", "pw"))
    yield s
    await s.close()


async def get(s: Site_, path: str, **kw: Any) -> tuple[int, str, Any]:
    r = await treq.get(s.base + path, **kw)
    return r.code, (await r.content()).decode(), r.headers


async def post(s: Site_, path: str, headers: dict[str, str] | None = None, **kw: Any) -> tuple[int, Any]:
    all_headers: Any = {**AUTH, **(headers or {})}
    r = await treq.post(s.base + path, headers=all_headers, **kw)
    body = await r.content()
    return r.code, json.loads(body) if r.headers.getRawHeaders("content-type") == ["application/json"] else body


@pytest_twisted.ensureDeferred
async def test_view_page_escapes_and_lists_frontends(site: Site_) -> None:
    code, html, headers = await get(site, "/view/")
    assert code == 200
    assert EVIL not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'data-key="web/primary/web0"' in html and 'data-key="web/fallback/web1"' in html
    assert 'data-admin="false"' in html and 'content=""' in html, "no CSRF token on the read-only page"
    assert 'data-op="menu"' not in html and 'data-op="pause"' not in html, "no admin buttons on /view/"


@pytest_twisted.ensureDeferred
async def test_json_api(site: Site_) -> None:
    code, text, headers = await get(site, "/view/api/state/alpha")
    assert code == 200 and headers.getRawHeaders("content-type") == ["application/json"]
    state = json.loads(text)
    assert [f["name"] for f in state["frontends"]] == ["web"]
    web0 = state["frontends"][0]["pools"][0]["backends"][0]
    assert (web0["name"], web0["state"], web0["weight"]) == ("web0", "unknown", 100)
    assert state["vpp"]["connected"] is False and "VPP" in state["vpp"]["error"]
    code, text, _ = await get(site, "/view/api/state/alpha/web")
    assert code == 200 and json.loads(text)["description"] == EVIL, "JSON carries the raw value"
    code, text, _ = await get(site, "/view/api/state/alpha/nope")
    assert code == 404 and json.loads(text) == {"error": "no such frontend 'nope' on alpha"}
    code, text, _ = await get(site, "/view/api/state/gamma")
    assert code == 404 and "no such maglevd 'gamma'" in text
    code, text, _ = await get(site, "/view/api/maglevds")
    assert [d["name"] for d in json.loads(text)] == ["alpha", "beta"]
    code, text, _ = await get(site, "/view/api/state")
    assert [d["name"] for d in json.loads(text)["maglevds"]] == ["alpha", "beta"]
    code, text, _ = await get(site, "/view/api/version")
    assert code == 200 and "version" in json.loads(text)
    code, text, _ = await get(site, "/view/static/maglev.js")
    assert code == 200 and "EventSource" in text
    code, text, headers = await get(site, "/favicon.ico")
    assert code == 200 and text.startswith("<svg") and headers.getRawHeaders("content-type") == ["image/svg+xml"]
    for bad in ("/view/static/..%2fpage.html", "/view/static/page.html", "/view/static/nope.js"):
        assert (await get(site, bad))[0] == 404, bad


@pytest_twisted.ensureDeferred
async def test_scope_cookie(site: Site_) -> None:
    code, html, headers = await get(site, "/view/?scope=beta")
    assert 'data-scope="beta"' in html
    assert any(c.startswith("maglev_scope=beta;") for c in headers.getRawHeaders("set-cookie"))
    code, html, headers = await get(site, "/view/", cookies={"maglev_scope": "beta"})
    assert 'data-scope="beta"' in html and headers.getRawHeaders("set-cookie") is None
    code, html, headers = await get(site, "/view/", cookies={"maglev_scope": "gone"})
    assert code == 200 and 'data-scope="alpha"' in html, "a cookie naming a gone daemon falls back to the first"
    assert any(c.startswith("maglev_scope=alpha;") for c in headers.getRawHeaders("set-cookie"))


@pytest_twisted.ensureDeferred
async def test_admin_auth(site: Site_) -> None:
    code, text, headers = await get(site, "/admin/")
    assert code == 401 and text == "unauthorized\n"
    assert headers.getRawHeaders("www-authenticate") == ['Basic realm="maglev admin", charset="UTF-8"']
    wrong = {"Authorization": "Basic " + base64.b64encode(b"admin:wrong").decode()}
    assert (await get(site, "/admin/", headers=wrong))[:2] == (401, "unauthorized\n")
    assert (await get(site, "/admin/api/events", headers=wrong))[0] == 401
    code, html, _ = await get(site, "/admin/", headers=AUTH)
    assert code == 200 and 'data-op="pause"' in html and 'data-op="menu"' in html
    assert f'content="{site.web.csrf}"' in html


@pytest_twisted.ensureDeferred
async def test_admin_is_not_served_without_credentials() -> None:
    s = Site_(None)
    try:
        code, text, _ = await get(s, "/admin/", headers=AUTH)
        assert code == 404 and "MAGLEV_FRONTEND_USER" in text
        code, body = await post(s, "/admin/api/alpha/backends/web0/pause", headers={"X-CSRF-Token": s.web.csrf})
        assert code == 404
        assert s.servicers["alpha"].health.prober("web0").health.state.value == "unknown"
    finally:
        await s.close()


@pytest_twisted.ensureDeferred
async def test_actions_need_same_origin_or_token(site: Site_) -> None:
    health = site.servicers["alpha"].health
    path = "/admin/api/alpha/backends/web0/pause"
    code, body = await post(site, path, headers={"Origin": "http://evil.example"})
    assert (code, body) == (403, {"error": "cross-site request refused"})
    code, body = await post(site, path, headers={"Origin": "http://evil.example", "X-CSRF-Token": site.web.csrf})
    assert code == 403, "a foreign Origin is refused even with a token"
    code, body = await post(site, path)
    assert code == 403, "no Origin and no token"
    code, body = await post(site, path, headers={"X-CSRF-Token": "0" * 64})
    assert code == 403
    assert health.prober("web0").health.state.value == "unknown", "nothing was changed by refused requests"
    assert (await get(site, path, headers=AUTH))[0] == 405, "actions are POST only"
    code, html, _ = await get(site, "/view/")
    assert 'data-f="state" class="state-unknown">unknown<' in html
    code, body = await post(site, path, headers={"X-CSRF-Token": site.web.csrf})
    assert (code, body["state"]) == (200, "paused")
    assert health.prober("web0").health.state.value == "paused"
    code, html, _ = await get(site, "/view/")
    assert 'data-f="state" class="state-paused">paused<' in html, "the page right after the action shows it"
    code, body = await post(site, "/admin/api/alpha/backends/web0/resume", headers={"Origin": site.base})
    assert code == 200 and health.prober("web0").health.state.value != "paused"
    assert site.servicers["beta"].health.prober("web0").health.state.value == "unknown", "scoped to alpha"


@pytest_twisted.ensureDeferred
async def test_action_errors_are_the_apis(site: Site_) -> None:
    token = {"X-CSRF-Token": site.web.csrf}
    code, body = await post(site, "/admin/api/alpha/backends/nope/pause", headers=token)
    assert (code, body) == (404, {"error": "no such backend 'nope'", "code": "NOT_FOUND"})
    assert (await post(site, "/admin/api/alpha/backends/web0/disable", headers=token))[0] == 200
    code, body = await post(site, "/admin/api/alpha/backends/web0/pause", headers=token)
    assert (code, body["code"]) == (409, "FAILED_PRECONDITION")
    assert body["error"] == "cannot pause backend web0: it is disabled; enable it first"
    code, body = await post(site, "/admin/api/alpha/backends/web0/explode", headers=token)
    assert code == 404 and "unknown operation 'explode'" in body["error"]
    weight = "/admin/api/alpha/frontends/web/pools/primary/backends/web0/weight"
    code, body = await post(site, weight, headers=token, data={"weight": "abc"})
    assert (code, body) == (400, {"error": "weight must be an integer 0..100, got 'abc'"})
    code, body = await post(site, weight, headers=token, data={"weight": "150"})
    assert (code, body["error"]) == (400, "weight must be 0..100, got 150")
    code, body = await post(site, weight, headers=token, data={"weight": "5", "flush": "maybe"})
    assert code == 400 and "flush" in body["error"]
    code, body = await post(site, weight.replace("primary", "nope"), headers=token, data={"weight": "5"})
    assert code == 404 and "nope" in body["error"]
    code, body = await post(site, weight, headers=token, data={"weight": "7", "flush": "true"})
    assert code == 200 and body["weight"] == 7
    code, text, _ = await get(site, "/view/api/state/alpha/web")
    assert json.loads(text)["pools"][0]["backends"][0]["weight"] == 7
    code, body = await post(site, "/admin/api/alpha/sync", headers=token)
    assert code == 503 and body["code"] == "UNAVAILABLE", "no VPP: the API's answer"
    code, body = await post(site, "/admin/api/alpha/reload", headers=token)
    assert code == 422 and "/nonexistent.yaml" in body["error"]
    code, body = await post(site, "/admin/api/gamma/reload", headers=token)
    assert code == 404


class SseClient(protocol.Protocol):
    """Reads an event stream until ``until`` is seen, then disconnects; ``opened`` runs once the
    stream answered (the server registers a client before its first write)."""

    def __init__(self, request: bytes, until: bytes, opened: Any = None) -> None:
        self.request = request
        self.until = until
        self.opened = opened
        self.data = b""
        self.done: defer.Deferred[bytes] = defer.Deferred()

    def connectionMade(self) -> None:
        self.transport.write(self.request)  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        if not self.data and self.opened is not None:
            reactor.callLater(0, self.opened)
        self.data += data
        if self.until in self.data and not self.done.called:
            self.transport.loseConnection()  # type: ignore[union-attr]
            self.done.callback(self.data)


async def stream(s: Site_, path: str, until: bytes, headers: str = "", then: Any = None) -> bytes:
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode()
    client = SseClient(request, until, then)
    port = s.port.getHost().port
    await protocol.ClientCreator(reactor, lambda: client).connectTCP("127.0.0.1", port)
    return await client.done.addTimeout(10, reactor)


@pytest_twisted.ensureDeferred
async def test_event_stream(site: Site_) -> None:
    hub = site.hub
    first = hub.publish("backend", {"maglevd": "alpha", "backend": "web0"})
    hub.publish("log", {"maglevd": "alpha", "message": "secret-ish"}, private=True)
    hub.publish("backend", {"maglevd": "alpha", "backend": "web1"})
    data = await stream(site, "/view/api/events", b'"web1"', headers=f"Last-Event-ID: {first.id}\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"X-Accel-Buffering: no" in head and b"text/event-stream" in head
    assert b"retry: 3000" in body
    assert b'"web0"' not in body, "only what the client missed"
    assert b"secret-ish" not in body, "log lines only on the admin stream"
    data = await stream(site, "/view/api/events", b"resync", headers="Last-Event-ID: 1-1\r\n")
    assert b"event: resync" in data, "an id from another epoch resyncs"
    data = await stream(site, "/view/api/events?lastEventId=" + first.id, b"web1")
    assert b"event: backend" in data
    auth = "Authorization: " + AUTH["Authorization"] + "\r\n"
    data = await stream(site, "/admin/api/events", b"secret-ish", headers=auth + f"Last-Event-ID: {first.id}\r\n")
    assert b"event: log" in data
    data = await stream(site, "/view/api/events", b": ping", then=lambda: site.clock.advance(15))
    assert data.count(b": ping") == 1


@pytest_twisted.ensureDeferred
async def test_live_events_reach_the_stream(site: Site_) -> None:
    """A real transition in alpha's health service arrives as an SSE event named for alpha."""
    source = site.web.sources["alpha"]
    source.start()
    try:
        for _ in range(100):  # the source subscribes within a few loop turns; bounded
            if site.servicers["alpha"].subscribers:
                break
            await defer.Deferred.fromFuture(asyncio.ensure_future(asyncio.sleep(0)))
        assert site.servicers["alpha"].subscribers, "the web source subscribed to alpha's events"
        data = await stream(
            site,
            "/view/api/events",
            b'"new":"paused"',
            then=lambda: site.servicers["alpha"].health.pause("web1"),
        )
        frames = [f for f in data.split(b"\n\n") if b"event: backend" in f]
        payload = json.loads(re.search(rb"data: (.*)", frames[-1]).group(1))  # type: ignore[union-attr]
        assert payload["maglevd"] == "alpha" and payload["backend"] == "web1" and payload["new"] == "paused"
    finally:
        await defer.Deferred.fromFuture(asyncio.ensure_future(source.stop()))


@pytest_twisted.ensureDeferred
async def test_access_lines_are_debug(site: Site_) -> None:
    from twisted.logger import ILogObserver, LogLevel, globalLogPublisher

    from maglev.log import gate, set_level

    seen: list[dict[str, Any]] = []
    observer = cast(ILogObserver, seen.append)
    globalLogPublisher.addObserver(observer)
    level = gate.level
    set_level(LogLevel.debug)  # as --log-level debug
    try:
        assert (await get(site, "/view/api/maglevds"))[0] == 200
    finally:
        set_level(level)
        globalLogPublisher.removeObserver(observer)
    access = [e for e in seen if e.get("event") == "web-request"]
    assert [(e["log_level"], e["method"], e["uri"], e["code"]) for e in access] == [
        (LogLevel.debug, "GET", "/view/api/maglevds", 200)
    ]
    assert not [e for e in seen if "GET /view/api/maglevds" in str(e.get("log_format", e.get("message", "")))]


@pytest_twisted.ensureDeferred
async def test_the_page_shows_the_apis_security_warnings(site: Site_) -> None:
    site.servicers["alpha"].security = ("plaintext; no tokens file", ("grpc-insecure: listens on :9090 without TLS",))
    code, html, _ = await get(site, "/view/?scope=alpha")
    assert code == 200
    assert '<p class="security-warning" role="alert">grpc-insecure: listens on :9090 without TLS</p>' in html
    assert ">plaintext; no tokens file<" in html
    code, html, _ = await get(site, "/view/?scope=beta")
    assert "security-warning" not in html


@pytest_twisted.ensureDeferred
async def test_foreign_hosts_and_origins_are_refused(site: Site_) -> None:
    token = {"X-CSRF-Token": site.web.csrf}
    assert (await get(site, "/view/", headers={"Host": "evil.example"}))[0] == 403
    assert (await get(site, "/view/api/state", headers={"Host": "evil.example:1234"}))[0] == 403
    code, _ = await post(site, "/admin/api/alpha/backends/web0/pause", headers={"Host": "evil.example", **token})
    assert code == 403
    code, _ = await post(site, "/admin/api/alpha/backends/web0/pause", headers={"Origin": "http://evil.example"})
    assert code == 403
    assert site.servicers["alpha"].backends.backend("web0").state != "paused"


@pytest_twisted.ensureDeferred
async def test_timed_actions_from_the_admin(site: Site_) -> None:
    token = {"X-CSRF-Token": site.web.csrf}
    code, body = await post(site, "/admin/api/alpha/backends/web0/pause", headers=token, data={"for": "soon"})
    assert code == 400 and body["error"].startswith("for: ")
    assert site.servicers["alpha"].backends.backend("web0").state != "paused", "refused: nothing changed"
    code, body = await post(site, "/admin/api/alpha/backends/web0/pause", headers=token, data={"for": "10m"})
    assert (code, body["state"]) == (200, "paused")
    overridden, left = site.servicers["alpha"].overrides.of_backend("web0")
    assert overridden and left == pytest.approx(600, abs=2)
    weight = "/admin/api/alpha/frontends/web/pools/primary/backends/web0/weight"
    code, _ = await post(site, weight, headers=token, data={"weight": "5", "for": "1h"})
    assert code == 200
    assert site.servicers["alpha"].overrides.weight_seconds_left(("web", "primary", "web0")) == pytest.approx(
        3600, abs=2
    )
