"""WebApp: the Klein application behind maglevd's web UI and maglevd-frontend.

    /view/                  read-only page (no login); ?scope=NAME picks a maglevd
    /view/api/...           the same data as JSON; /view/api/events is the SSE stream
    /admin/                 the page with actions and a live event panel (basic auth)
    /admin/api/...          POST actions, and the SSE stream with log lines

Every mutating request is a POST that must come from this site (a matching
Origin header, or the page's CSRF token), and goes through the same API calls
as maglevc, so validation and error texts are the same.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import hmac
import inspect
import json
import os
import re
import time
from collections.abc import Callable, Coroutine, Mapping
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import quote, unquote

import grpc
from google.protobuf import json_format
from klein import Klein
from twisted.internet.defer import Deferred
from twisted.web.iweb import IRequest

from ..addresses import TcpAddress
from ..api.gen.maglev.v1 import maglev_pb2 as pb
from ..audit import Audit
from ..config.durations import DurationError, parse_duration
from ..log import Logger
from .calls import FLEET, AdminCalls
from .consistency import VipConsistency
from .export import COLUMNS, stats_rows, to_csv
from .hosts import HostCheck
from .page import templates_dir, web_version
from .source import DaemonSource
from .sse import EventHub
from .view import event_view, status_view
from .views import Views

Handler = TypeVar("Handler", bound=Callable[..., Any])
WEIGHT = re.compile(r"[0-9]{1,3}")  # ASCII digits only: str.isdigit() takes "²", which int() refuses

RELEASE = pb.ReleaseCheckerIsolationRequest()
SCOPE_COOKIE = b"maglev_scope"
CLOSED_COOKIE = b"maglev_closed"
REALM = 'Basic realm="maglev admin", charset="UTF-8"'
OPERATIONS = {
    "pause": "PauseBackend",
    "resume": "ResumeBackend",
    "enable": "EnableBackend",
    "disable": "DisableBackend",
}
STATIC_TYPES = {"js": b"text/javascript; charset=utf-8", "css": b"text/css; charset=utf-8", "svg": b"image/svg+xml"}
HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


def choose_scope(names: list[str], asked: str | None, cookie: str | None) -> tuple[str, bool]:
    """(the maglevd to show, whether to set the cookie): a valid ?scope=, else the cookie, else the first."""
    if asked is not None and asked in names:
        return asked, asked != cookie
    if cookie is not None and cookie in names:
        return cookie, False
    return names[0], cookie is not None  # a cookie naming a gone daemon is replaced


def same_origin(origin: str, host: str, secure: bool) -> bool:
    return origin == f"{'https' if secure else 'http'}://{host}"


class Credentials:
    """The admin user and password, compared in constant time (both, always)."""

    def __init__(self, user: str, password: str) -> None:
        self.user = user
        self._user = user.encode()
        self._password = password.encode()

    def check(self, header: bytes | None) -> bool:
        if not header or not header[:6].lower() == b"basic ":
            return False
        try:
            user, _, password = base64.b64decode(header[6:].strip(), validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        ok_user = hmac.compare_digest(user, self._user)
        ok_password = hmac.compare_digest(password, self._password)
        return ok_user & ok_password


def _in_loop(f: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Deferred[Any]]:
    """Run an async handler on the reactor's asyncio loop (Klein only drives Deferred coroutines)."""

    @wraps(f)
    def handler(*args: Any, **kwargs: Any) -> Deferred[Any]:
        return Deferred.fromFuture(asyncio.ensure_future(f(*args, **kwargs)))

    return handler


@functools.lru_cache(maxsize=32)  # bounded: unknown names are asked for too
def refuse_admin(credentials: Credentials | None, request: IRequest) -> bytes | None:
    """The answer refusing a request without the admin's credentials, or None to go on."""
    if credentials is None:
        request.setResponseCode(404)
        request.setHeader(b"content-type", b"text/plain")
        return b"admin is disabled: set MAGLEV_FRONTEND_USER and MAGLEV_FRONTEND_PASSWORD\n"
    if not credentials.check(request.getHeader(b"authorization")):
        request.setResponseCode(401)
        request.setHeader(b"www-authenticate", REALM.encode())
        request.setHeader(b"content-type", b"text/plain")
        return b"unauthorized\n"
    return None


def refuse_post(credentials: Credentials | None, csrf: str, request: IRequest) -> bytes | None:
    """refuse_admin, and refuse a cross-site request: same origin, or the page's CSRF token."""
    refused = refuse_admin(credentials, request)
    if refused is not None:
        return refused
    origin = request.getHeader(b"origin")
    host = (request.getHeader(b"host") or b"").decode("ascii", "replace")
    if origin is not None:
        if same_origin(origin.decode("ascii", "replace"), host, request.isSecure()):
            return None
    else:
        token = (request.getHeader(b"x-csrf-token") or b"").decode("ascii", "replace") or _arg(request, "csrf")
        if token and hmac.compare_digest(token, csrf):
            return None
    return _json(request, {"error": "cross-site request refused"}, 403)


def _guard(refuse: Callable[[WebApp, IRequest], bytes | None]) -> Callable[[Handler], Handler]:
    """A route that answers only when ``refuse`` finds nothing to refuse (one guard, every admin route)."""

    def decorate(f: Handler) -> Handler:
        if inspect.iscoroutinefunction(f):

            @functools.wraps(f)
            async def guarded_async(self: WebApp, request: IRequest, *args: Any, **kwargs: Any) -> Any:
                refused = refuse(self, request)
                return refused if refused is not None else await f(self, request, *args, **kwargs)

            return cast(Handler, guarded_async)

        @functools.wraps(f)
        def guarded(self: WebApp, request: IRequest, *args: Any, **kwargs: Any) -> Any:
            refused = refuse(self, request)
            return refused if refused is not None else f(self, request, *args, **kwargs)

        return cast(Handler, guarded)

    return decorate


def _admin(f: Handler) -> Handler:
    """Admin pages and streams: the admin's credentials (basic auth)."""
    return _guard(lambda app, request: refuse_admin(app.credentials, request))(f)


def _admin_post(f: Handler) -> Handler:
    """Admin actions: the admin's credentials and a same-origin request (or the CSRF token)."""
    return _guard(lambda app, request: refuse_post(app.credentials, app.csrf, request))(f)


def _static_file(name: str) -> bytes | None:
    """A file of templates/static, read once (no disk reads on the reactor per page load)."""
    path = templates_dir() / "static" / name
    if "/" in name or name.startswith(".") or not path.is_file():
        return None
    return path.read_bytes()


def _json(request: IRequest, data: Any, code: int = 200) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"cache-control", b"no-store")
    return json.dumps(data, separators=(",", ":")).encode()


def _arg(request: IRequest, name: str) -> str | None:
    values = request.args.get(name.encode())
    return None if not values else values[0].decode("utf-8", "replace")


def _for(request: IRequest) -> tuple[float, bytes | None]:
    """The form's ``for`` (30m, 2h; empty: until changed) in seconds, or the 400 refusing it."""
    text = (_arg(request, "for") or "").strip()
    if not text:
        return 0.0, None
    try:
        return parse_duration(text), None
    except DurationError as e:
        return 0.0, _json(request, {"error": f"for: {e}"}, 400)


def _weight_form(request: IRequest, message: pb.SetWeightRequest) -> pb.SetWeightRequest | bytes:
    """The weight form's fields into ``message``, or the 400 naming the bad one."""
    text = (_arg(request, "weight") or "").strip()
    if not WEIGHT.fullmatch(text):  # the range is the API's to check, with its own words
        return _json(request, {"error": f"weight must be an integer 0..100, got {text[:20]!r}"}, 400)
    flush_text = (_arg(request, "flush") or "false").strip().lower()
    if flush_text not in ("true", "false", "on", "off", "1", "0"):
        return _json(request, {"error": f"flush must be true or false, got {flush_text!r}"}, 400)
    seconds, refused = _for(request)
    if refused is not None:
        return refused
    message.weight, message.flush, message.for_seconds = int(text), flush_text in ("true", "on", "1"), seconds
    return message


def consistency_metrics(agreement: Mapping[str, VipConsistency]) -> str:
    """maglevd-frontend's /metrics: whether the maglevds that share a VIP hold the same table."""
    lines = [
        "# HELP maglev_frontend_consistent 1 while every maglevd serving the VIP holds the same new-flow table",
        "# TYPE maglev_frontend_consistent gauge",
    ]
    for vip, c in sorted(agreement.items()):
        frontends = ",".join(sorted(set(c.frontends.values())))
        lines.append(f'maglev_frontend_consistent{{vip="{vip}",frontend="{frontends}"}} {1 if c.consistent else 0}')
    return "\n".join(lines) + "\n"


async def _stats(request: IRequest, views: Views, sources: Mapping[str, DaemonSource], fmt: str) -> bytes:
    """The stats table (export.py); ``?maglevd=NAME`` for one daemon, else all of them."""
    name = _arg(request, "maglevd")
    chosen = list(sources.values()) if name is None else [sources[name]] if name in sources else []
    if fmt not in ("csv", "json") or not chosen:
        return _json(request, {"error": f"no such table: stats.{fmt}" if chosen else f"no such maglevd {name!r}"}, 404)
    rows = stats_rows(await asyncio.gather(*(views.of(s) for s in chosen)), time.time())
    if fmt == "json":
        return _json(request, {"columns": list(COLUMNS), "rows": rows})
    request.setHeader(b"content-type", b"text/csv; charset=utf-8")
    return to_csv(rows).encode()


def _cookie(request: IRequest, name: bytes) -> str | None:
    value = request.getCookie(name)
    return None if value is None else unquote(value.decode("utf-8", "replace"))


class WebApp:
    app = Klein()
    log = Logger()

    def __init__(
        self,
        hub: EventHub,
        credentials: Credentials | None,
        hosts: HostCheck | None = None,
        audit: Audit | None = None,
    ) -> None:
        self.hub = hub
        self.credentials = credentials
        self.hosts = hosts or HostCheck(TcpAddress("127.0.0.1", 0))
        self.audit = audit or Audit()
        self.sources: dict[str, DaemonSource] = {}
        self.csrf = hmac.new(os.urandom(32), b"maglev-csrf", hashlib.sha256).hexdigest()
        self.views = Views(self.sources)
        self.calls = AdminCalls(self.sources, credentials.user if credentials else "", self.audit, HTTP_STATUS)

    def add_source(self, source: DaemonSource) -> None:
        self.sources[source.name] = source

    # --- wiring from the sources -----------------------------------------------------------
    def on_event(self, source: DaemonSource, event: pb.Event) -> None:
        kind, data = event_view(source.name, event)
        self.hub.publish(kind, data, private=kind == "log")
        if kind == "log" and data["event"].startswith("lb-sync"):
            # VPP changed: pages refetch weights and buckets (the log line itself stays admin-only)
            self.hub.publish("sync", {"maglevd": source.name, "time": data["time"]})

    def on_status(self, source: DaemonSource) -> None:
        self.hub.publish("maglevd", {"maglevd": source.name, "connected": source.connected, "error": source.error})

    def status_of(self, source: DaemonSource) -> dict[str, Any]:
        return status_view(source.status)

    # --- pages ----------------------------------------------------------------------------------
    @app.route("/", methods=["GET"])
    def root(self, request: IRequest) -> bytes:
        request.redirect(b"/view/")
        return b""

    @app.route("/favicon.ico", methods=["GET"])
    def favicon(self, request: IRequest) -> bytes:
        return self.static(request, "favicon.svg")  # browsers ask here whatever the page links

    @app.route("/healthz", methods=["GET"])
    def healthz(self, request: IRequest) -> bytes:
        request.setHeader(b"content-type", b"text/plain")
        return b"ok\n"

    @app.route("/view/", methods=["GET"])
    @_in_loop
    async def view_page(self, request: IRequest) -> Any:
        return await self._page(request, admin=False)

    @app.route("/admin/", methods=["GET"])
    @_in_loop
    @_admin
    async def admin_page(self, request: IRequest) -> Any:
        return await self._page(request, admin=True)

    async def _page(self, request: IRequest, admin: bool) -> Any:
        names = list(self.sources)
        scope, set_cookie = choose_scope(names, _arg(request, "scope"), _cookie(request, SCOPE_COOKIE))
        if set_cookie:
            cast(Any, request).addCookie(
                SCOPE_COOKIE, quote(scope).encode(), path=b"/", sameSite="lax", max_age=str(365 * 86400)
            )
        closed = set(filter(None, (_cookie(request, CLOSED_COOKIE) or "").split(",")))
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return await self.views.page(scope, admin, self.csrf if admin else "", closed)

    @app.route("/view/static/<string:name>", methods=["GET"])
    def static(self, request: IRequest, name: str) -> bytes:
        kind = STATIC_TYPES.get(name.rpartition(".")[2])
        body = _static_file(name) if kind is not None else None
        if body is None:
            request.setResponseCode(404)
            return b"not found\n"
        request.setHeader(b"content-type", kind)
        request.setHeader(b"cache-control", b"no-cache")
        return body

    # --- JSON --------------------------------------------------------------------------------------
    @app.route("/view/api/version", methods=["GET"])
    def api_version(self, request: IRequest) -> bytes:
        return _json(request, web_version())

    @app.route("/view/api/maglevds", methods=["GET"])
    def api_maglevds(self, request: IRequest) -> bytes:
        return _json(request, [self.status_of(s) for s in self.sources.values()])

    @app.route("/view/api/state", methods=["GET"])
    @_in_loop
    async def api_state(self, request: IRequest) -> bytes:
        views = await asyncio.gather(*(self.views.of(s) for s in self.sources.values()))
        return _json(request, {"maglevds": views})

    @app.route("/view/api/state/<string:daemon>", methods=["GET"])
    @_in_loop
    async def api_daemon(self, request: IRequest, daemon: str) -> bytes:
        source = self.sources.get(daemon)
        if source is None:
            return _json(request, {"error": f"no such maglevd {daemon!r}"}, 404)
        return _json(request, await self.views.of(source))

    @app.route("/view/api/state/<string:daemon>/<string:frontend>", methods=["GET"])
    @_in_loop
    async def api_frontend(self, request: IRequest, daemon: str, frontend: str) -> bytes:
        source = self.sources.get(daemon)
        if source is None:
            return _json(request, {"error": f"no such maglevd {daemon!r}"}, 404)
        view = await self.views.of(source)
        for fe in view["frontends"]:
            if fe["name"] == frontend:
                return _json(request, fe)
        return _json(request, {"error": f"no such frontend {frontend!r} on {daemon}"}, 404)

    @app.route("/view/api/stats.<string:fmt>", methods=["GET"])
    @_in_loop
    async def api_stats(self, request: IRequest, fmt: str) -> bytes:
        return await _stats(request, self.views, self.sources, fmt)

    @app.route("/view/api/consistency", methods=["GET"])
    @_in_loop
    async def api_consistency(self, request: IRequest) -> bytes:
        await asyncio.gather(*(s.state() for s in self.sources.values()))
        return _json(request, [c.as_dict() for c in self.views.consistency().values()])

    @app.route("/metrics", methods=["GET"])
    @_in_loop
    async def metrics(self, request: IRequest) -> bytes:
        await asyncio.gather(*(s.state() for s in self.sources.values()))
        request.setHeader(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")
        return consistency_metrics(self.views.consistency()).encode()

    @app.route("/view/api/events", methods=["GET"])
    def api_events(self, request: IRequest) -> Any:
        return self.hub.resource(private=False)

    @app.route("/admin/api/events", methods=["GET"])
    @_admin
    def admin_events(self, request: IRequest) -> Any:
        return self.hub.resource(private=True)

    # --- admin ----------------------------------------------------------------------------------------
    async def _act(
        self, request: IRequest, daemon: str, method: str, message: Any, audited: bool = True
    ) -> tuple[Any, bytes | None]:
        """Call the daemon; its answer, or the error page. ``audited``: a change (a preview is not)."""
        o = await self.calls.call(request, daemon, method, message, audited)
        return (o.result, None) if o.ok else (None, _json(request, {"error": o.error, "code": o.code}, o.http))

    async def _fleet(self, request: IRequest, backend: str, method: str, message: Any, preview: Any) -> bytes:
        if _arg(request, "preview"):
            body, code = await self.calls.fleet_preview(request, backend, preview)
        else:
            body, code = await self.calls.fleet_apply(request, backend, method, message)
        return _json(request, body, code)

    async def _preview(self, request: IRequest, daemon: str, message: pb.PreviewRequest) -> bytes:
        result, error = await self._act(request, daemon, "PreviewChange", message, audited=False)
        if error is not None:
            return error
        return _json(request, json_format.MessageToDict(result, preserving_proto_field_name=True))

    @app.route("/admin/api/<string:daemon>/backends/<string:backend>/<string:op>", methods=["POST"])
    @_in_loop
    @_admin_post
    async def admin_backend(self, request: IRequest, daemon: str, backend: str, op: str) -> bytes:
        if op not in OPERATIONS:
            return _json(request, {"error": f"unknown operation {op!r}: use one of {', '.join(OPERATIONS)}"}, 404)
        preview = pb.PreviewRequest(backend=pb.BackendChange(name=backend, action=op))
        seconds, refused = _for(request)
        if refused is not None:
            return refused
        if daemon == FLEET:  # every maglevd that has the backend, one after the other
            return await self._fleet(
                request, backend, OPERATIONS[op], pb.BackendRequest(name=backend, for_seconds=seconds), preview
            )
        if _arg(request, "preview"):  # what it would do, without doing it
            return await self._preview(request, daemon, preview)
        info, error = await self._act(
            request, daemon, OPERATIONS[op], pb.BackendRequest(name=backend, for_seconds=seconds)
        )
        if error is not None:
            return error
        return _json(request, {"ok": True, "backend": info.name, "state": info.state, "enabled": info.enabled})

    @app.route(
        "/admin/api/<string:daemon>/frontends/<string:frontend>/pools/<string:pool>/backends/<string:backend>/weight",
        methods=["POST"],
    )
    @_in_loop
    @_admin_post
    async def admin_weight(self, request: IRequest, daemon: str, frontend: str, pool: str, backend: str) -> bytes:
        message = _weight_form(request, pb.SetWeightRequest(frontend=frontend, pool=pool, backend=backend))
        if isinstance(message, bytes):
            return message
        if daemon == FLEET:
            return await self._fleet(
                request, backend, "SetFrontendPoolBackendWeight", message, pb.PreviewRequest(set_weight=message)
            )
        if _arg(request, "preview"):
            return await self._preview(request, daemon, pb.PreviewRequest(set_weight=message))
        _, error = await self._act(request, daemon, "SetFrontendPoolBackendWeight", message)
        if error is not None:
            return error
        return _json(
            request, {"ok": True, "frontend": frontend, "pool": pool, "backend": backend, "weight": message.weight}
        )

    @app.route("/admin/api/<string:daemon>/sync", methods=["POST"])
    @_in_loop
    @_admin_post
    async def admin_sync(self, request: IRequest, daemon: str) -> bytes:
        result, error = await self._act(request, daemon, "SyncVPPLBState", pb.SyncVPPLBStateRequest())
        if error is not None:
            return error
        if result.errors:
            return _json(request, {"error": "; ".join(result.errors), "changes": result.changes}, 502)
        return _json(request, {"ok": True, "changes": result.changes})

    @app.route("/admin/api/<string:daemon>/release-isolation", methods=["POST"])
    @_in_loop
    @_admin_post
    async def admin_release_isolation(self, request: IRequest, daemon: str) -> bytes:
        result, error = await self._act(request, daemon, "ReleaseCheckerIsolation", RELEASE)
        return error if error is not None else _json(request, {"ok": True, "released": list(result.released)})

    @app.route("/admin/api/<string:daemon>/reload", methods=["POST"])
    @_in_loop
    @_admin_post
    async def admin_reload(self, request: IRequest, daemon: str) -> bytes:
        result, error = await self._act(request, daemon, "ReloadConfig", pb.ReloadConfigRequest())
        if error is not None:
            return error
        if not result.ok:
            problem = result.parse_error or result.semantic_error or result.apply_error
            return _json(request, {"error": f"reload refused: {problem}", "generation": result.generation}, 422)
        return _json(request, {"ok": True, "generation": result.generation})
