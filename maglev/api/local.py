"""The Maglev API called in-process: the servicer's own handlers, with the same
request and response messages, and errors that look like a channel's.

maglevd's web UI reads and acts through this, and maglevd-frontend through a
real channel (``pb_grpc.MaglevStub``): one data source, two ways in, and
validation and error texts that cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

import grpc

from .servicer import MaglevServicer
from .wire import SERVICE, message_of


class ApiError(Exception):
    """A handler's ``context.abort``; ``code()`` and ``details()`` like ``grpc.aio.AioRpcError``."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class LocalContext:
    """The part of ``grpc.aio.ServicerContext`` the servicer uses."""

    async def abort(self, code: grpc.StatusCode, details: str = "") -> NoReturn:
        raise ApiError(code, details)


class LocalStub:
    """``stub.Method(request)`` → the servicer's coroutine (or async generator for streams)."""

    def __init__(self, servicer: MaglevServicer) -> None:
        self._servicer = servicer

    def __getattr__(self, method: str) -> Callable[..., Any]:
        described = SERVICE.methods_by_name.get(method)
        if described is None:
            raise AttributeError(f"the Maglev API has no method {method!r}")
        handler = getattr(self._servicer, method)
        if described.server_streaming:
            return lambda request, timeout=None, metadata=(): handler(request, LocalContext())

        async def call(request: Any, timeout: float | None = None, metadata: Any = ()) -> Any:
            return message_of(described, await handler(request, LocalContext()))

        return call
