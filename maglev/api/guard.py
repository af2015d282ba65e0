"""The gRPC listener's door: every call is identified (token, client certificate,
loopback), decided by ``maglev.access``, refused with UNAUTHENTICATED or
PERMISSION_DENIED and a one-line reason, and, when it changes state, audited.

A grpc.aio server interceptor cannot see the peer, so it wraps the method's
handler: the wrapper runs inside the call, where the context has the peer, the
metadata and the TLS auth context.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from ..access import (
    Caller,
    Decision,
    Policy,
    Role,
    decide,
    is_loopback_peer,
    load_policy,
    method_name,
    needed_role,
    peer_address,
)
from ..audit import Audit

REFUSALS = {"unauthenticated": grpc.StatusCode.UNAUTHENTICATED, "permission_denied": grpc.StatusCode.PERMISSION_DENIED}


class TokensFile:
    """The tokens file's current policy (None: no file, the safe default), re-read on reload."""

    def __init__(self, path: str = "", policy: Policy | None = None) -> None:
        self.path = path
        self.policy = policy if policy is not None or not path else load_policy(path)

    def reread(self) -> bool:
        """Read the file again; True when it changed. Raises ConfigError, and the old policy stays."""
        if not self.path:
            return False
        policy = load_policy(self.path)
        if policy == self.policy:
            return False
        self.policy = policy
        return True


def caller_of(context: grpc.aio.ServicerContext) -> Caller:
    peer = context.peer() or ""
    authorization = None
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            authorization = value if isinstance(value, str) else value.decode("ascii", "replace")
    subject = None
    auth = context.auth_context() or {}
    if auth.get("x509_subject"):  # only there for a client certificate the server verified
        subject = auth["x509_subject"][0].decode("utf-8", "replace")
    return Caller(peer, is_loopback_peer(peer), authorization, subject)


def _on_behalf_of(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "maglev-on-behalf-of":
            return (value if isinstance(value, str) else value.decode("utf-8", "replace"))[:200]
    return ""


def outcome(response: Any) -> str:
    """ "ok", or "failed" for a change its own checks or VPP refused (the answer says so)."""
    if getattr(response, "ok", True) is False or list(getattr(response, "errors", ()) or ()):
        return "failed"
    return "ok"


class Guard(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, tokens: TokensFile, audit: Audit) -> None:
        self.tokens = tokens
        self.audit = audit

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        full_method: str = handler_call_details.method
        if handler is None or needed_role(full_method) is None:
            return handler
        return self._wrap(handler, full_method)

    def _decide(self, full_method: str, context: grpc.aio.ServicerContext) -> tuple[Decision, Caller]:
        caller = caller_of(context)
        return decide(self.tokens.policy, full_method, caller), caller

    def _audit(self, decision: Decision, caller: Caller, full_method: str, request: Any, result: str, ctx: Any) -> None:
        fields = (
            json_format.MessageToDict(request, preserving_proto_field_name=True) if isinstance(request, Message) else {}
        )
        self.audit.record(
            decision.who, method_name(full_method), peer_address(caller.peer), result, fields, _on_behalf_of(ctx)
        )

    def _wrap(self, handler: grpc.RpcMethodHandler, full_method: str) -> grpc.RpcMethodHandler:
        audited = needed_role(full_method) is Role.ADMIN
        guard = self

        async def check(request: Any, context: grpc.aio.ServicerContext) -> tuple[Decision, Caller]:
            decision, caller = guard._decide(full_method, context)
            if not decision.allowed:
                if audited:
                    guard._audit(decision, caller, full_method, request, decision.refusal, context)
                await context.abort(REFUSALS[decision.refusal], decision.message)
            return decision, caller

        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                decision, caller = await check(request, context)
                if not audited:
                    return await inner(request, context)
                try:
                    response = await inner(request, context)
                except BaseException:
                    code = context.code()
                    result = code.name.lower() if isinstance(code, grpc.StatusCode) else "error"
                    guard._audit(decision, caller, full_method, request, result, context)
                    raise
                guard._audit(decision, caller, full_method, request, outcome(response), context)
                return response

            return grpc.unary_unary_rpc_method_handler(
                unary_unary, handler.request_deserializer, handler.response_serializer
            )
        # WatchEvents (a request, then a stream) and server reflection (streams both ways)
        for inner_stream, make, one_request in (
            (handler.unary_stream, grpc.unary_stream_rpc_method_handler, True),
            (handler.stream_stream, grpc.stream_stream_rpc_method_handler, False),
        ):
            if inner_stream is not None:
                streaming = _checked_stream(inner_stream, check, one_request)
                return make(streaming, handler.request_deserializer, handler.response_serializer)
        return handler  # stream_unary: we serve none


def _checked_stream(inner: Any, check: Any, one_request: bool) -> Any:
    """A streaming handler that ``check``s the call before the first item."""

    async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        await check(request if one_request else None, context)
        async for item in inner(request, context):
            yield item

    return streaming
