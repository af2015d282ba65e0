"""AdminCalls: the admin pages' calls to the maglevds, audited, one router or the fleet.

A change asked of the fleet (``*`` for the maglevd in an admin path) goes to every watched
maglevd whose configuration has the backend, router by router in the order they are
watched; the first failure stops it there and the answer says which routers already made
the change (they are not rolled back: undoing is another change, for the operator to ask).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from google.protobuf import json_format
from twisted.web.iweb import IRequest

from ..api.guard import outcome
from ..audit import Audit
from .source import DaemonSource, rpc_failure

if TYPE_CHECKING:
    import grpc

FLEET = "*"


@dataclass
class Outcome:
    daemon: str
    result: Any = None
    error: str = ""
    code: str = ""  # the gRPC status name of a refusal
    http: int = 200

    @property
    def ok(self) -> bool:
        return not self.error


def _not_recorded(*args: Any, **kwargs: Any) -> None:
    """A read through the admin pages (a preview): nothing to audit."""


class AdminCalls:
    def __init__(
        self, sources: dict[str, DaemonSource], user: str, audit: Audit, http: dict[grpc.StatusCode, int]
    ) -> None:
        self.sources = sources
        self.who = f"web:{user}" if user else "web"
        self.audit = audit
        self.http = http

    async def call(self, request: IRequest, daemon: str, method: str, message: Any, audited: bool = True) -> Outcome:
        """One maglevd's answer, or why not (``audited``: a change; a preview is not)."""
        source = self.sources.get(daemon)
        if source is None:
            return Outcome(daemon, error=f"no such maglevd {daemon!r}", code="NOT_FOUND", http=404)
        fields = json_format.MessageToDict(message, preserving_proto_field_name=True)
        address = getattr(request.getClientAddress(), "host", "")
        record = self.audit.record if audited else _not_recorded
        try:
            result = await source.call(method, message, on_behalf_of=self.who)
        except Exception as e:
            failure = rpc_failure(e)
            if failure is None:
                record(self.who, method, address, "error", fields, detail=f"on {daemon}: {e}")
                raise
            code, details = failure
            record(self.who, method, address, code.name.lower(), fields, detail=f"on {daemon}: {details}")
            return Outcome(daemon, error=details, code=code.name, http=self.http.get(code, 502))
        record(self.who, method, address, outcome(result), fields, detail=f"on {daemon}")
        return Outcome(daemon, result)

    def serving(self, backend: str) -> list[str]:
        """The watched maglevds whose configuration (as last read) has the backend."""
        return [n for n, s in self.sources.items() if s.cached is not None and backend in s.cached.backends]

    async def fleet_preview(self, request: IRequest, backend: str, preview: Any) -> tuple[dict[str, Any], int]:
        names = self.serving(backend)
        if not names:
            return {"error": f"no watched maglevd has backend {backend!r}"}, 404
        previews: dict[str, Any] = {}
        for name in names:
            o = await self.call(request, name, "PreviewChange", preview, audited=False)
            previews[name] = (
                json_format.MessageToDict(o.result, preserving_proto_field_name=True)
                if o.ok
                else {"error": o.error, "code": o.code}
            )
        return {"fleet": names, "previews": previews}, 200

    async def fleet_apply(
        self, request: IRequest, backend: str, method: str, message: Any
    ) -> tuple[dict[str, Any], int]:
        names = self.serving(backend)
        if not names:
            return {"error": f"no watched maglevd has backend {backend!r}"}, 404
        results: list[dict[str, Any]] = []
        for i, name in enumerate(names):
            o = await self.call(request, name, method, message)
            results.append({"maglevd": name, "ok": o.ok, "error": o.error, "code": o.code})
            if not o.ok:
                done = [r["maglevd"] for r in results if r["ok"]]
                for later in names[i + 1 :]:
                    results.append({"maglevd": later, "ok": False, "error": "not attempted: an earlier router failed"})
                kept = f"; applied on {', '.join(done)} (not rolled back)" if done else "; applied nowhere"
                return {"error": f"failed on {name}: {o.error}{kept}", "results": results}, o.http
        return {"ok": True, "results": results}, 200


__all__ = ["FLEET", "AdminCalls", "Outcome"]
