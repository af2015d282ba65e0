"""WatchEvents: the API's event streams, fed from the bus and the log gate. Reactor thread.

Each subscriber gets a bounded queue; one that falls behind is ended with
RESOURCE_EXHAUSTED instead of slowing the daemon. Log lines from other threads (the VPP
thread logs too) are handed over to the reactor's loop.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from twisted.logger import LogLevel

from ..bus import EventBus
from ..events import BackendTransition, Event, FrontendTransition, VppConnected, VppDisconnected
from ..log import event_as_record, gate, parse_level
from .gen.maglev.v1 import maglev_pb2 as pb

QUEUE_LIMIT = 1000
STOP = object()

Hydration = Callable[[], list[tuple[str, str]]]  # every frontend's (name, state), for a new stream


class Subscriber:
    """One WatchEvents stream: a bounded queue, fed on the reactor thread."""

    def __init__(self, request: pb.WatchRequest, loop: asyncio.AbstractEventLoop) -> None:
        self.request = request
        self.loop = loop
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=QUEUE_LIMIT)
        self.overflowed = False
        self.level = parse_level(request.log_level or "info") if request.log else LogLevel.critical

    def offer(self, item: Any) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True
            self.queue._queue.clear()  # type: ignore[attr-defined]  # drop the backlog: the stream ends now
            self.queue.put_nowait(STOP)

    def end(self) -> None:
        self.queue._queue.clear()  # type: ignore[attr-defined]
        try:
            self.queue.put_nowait(STOP)
        except asyncio.QueueFull:
            pass


class EventStreams:
    def __init__(self, bus: EventBus, hydrate: Hydration, reactor_thread: Callable[[], bool] | None = None) -> None:
        self.hydrate = hydrate
        self.subscribers: set[Subscriber] = set()
        self._ids = 0
        main = threading.get_ident()
        self._on_reactor = reactor_thread or (lambda: threading.get_ident() == main)
        self._subscriptions = [
            bus.subscribe(BackendTransition, self._backend_event),
            bus.subscribe(FrontendTransition, self._frontend_event),
            bus.subscribe((VppConnected, VppDisconnected), self._vpp_event),
        ]
        self._remove_tap = gate.add_tap(self._log_event)

    def close(self) -> None:
        """Stop feeding streams (the daemon is stopping): unsubscribe, remove the log tap, end them."""
        for sub in self._subscriptions:
            sub.cancel()
        self._remove_tap()
        self.end_all()

    def end_all(self) -> None:
        for sub in list(self.subscribers):
            sub.end()

    async def watch(self, request: pb.WatchRequest, context: grpc.aio.ServicerContext) -> AsyncIterator[pb.Event]:
        if request.log_level:
            try:
                parse_level(request.log_level)
            except ValueError as e:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        if not (request.log or request.backend or request.frontend or request.vpp):
            request = pb.WatchRequest(log=False, backend=True, frontend=True, vpp=True)
        sub = Subscriber(request, asyncio.get_running_loop())
        if request.frontend:  # hydrate: the current state of every frontend, old == new
            now = time.time()
            for name, state in self.hydrate():
                frontend = pb.FrontendEvent(frontend=name, **{"from": state}, to=state)
                sub.offer(pb.Event(id=self._next_id(), time=now, frontend=frontend))
        self.subscribers.add(sub)
        try:
            while True:
                item = await sub.queue.get()
                if item is STOP:
                    if sub.overflowed:
                        await context.abort(
                            grpc.StatusCode.RESOURCE_EXHAUSTED,
                            f"subscriber too slow: more than {QUEUE_LIMIT} events queued",
                        )
                    return
                yield item
        finally:
            self.subscribers.discard(sub)

    # --- feeding ------------------------------------------------------------------------
    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _fan_out(self, want: Callable[[pb.WatchRequest], bool], make: Callable[[], pb.Event]) -> None:
        event: pb.Event | None = None
        for sub in list(self.subscribers):
            if want(sub.request):
                if event is None:
                    event = make()
                sub.offer(event)

    def _backend_event(self, e: BackendTransition) -> None:
        def make() -> pb.Event:
            t = pb.Transition(**{"from": e.old}, to=e.new, time=e.time, code=e.code, detail=e.detail)
            backend = pb.BackendEvent(backend=e.backend, transition=t, counter=e.counter, enabled=e.enabled)
            return pb.Event(id=self._next_id(), time=e.time, backend=backend)

        self._fan_out(lambda r: r.backend, make)

    def _frontend_event(self, e: FrontendTransition) -> None:
        def make() -> pb.Event:
            frontend = pb.FrontendEvent(frontend=e.frontend, **{"from": e.old}, to=e.new)
            return pb.Event(id=self._next_id(), time=e.time, frontend=frontend)

        self._fan_out(lambda r: r.frontend, make)

    def _vpp_event(self, e: Event) -> None:
        if isinstance(e, VppConnected):
            vpp = pb.VppEvent(connected=True, version=e.version)
        elif isinstance(e, VppDisconnected):
            vpp = pb.VppEvent(connected=False, reason=e.reason)
        else:
            return
        self._fan_out(lambda r: r.vpp, lambda: pb.Event(id=self._next_id(), time=e.time, vpp=vpp))

    def _log_event(self, event: dict[str, Any]) -> None:
        if not self.subscribers:
            return
        level = event.get("log_level", LogLevel.info)
        wanted = [s for s in self.subscribers if s.request.log and level >= s.level]
        if not wanted:
            return
        record = event_as_record(event)
        fields = {k: v for k, v in record.items() if k not in ("time", "level", "event", "msg", "logger")}
        log = pb.LogEvent(
            level=str(record.get("level", "")), event=str(record.get("event", "")), message=str(record.get("msg", "")),
            logger=str(record.get("logger", "")), fields_json=json.dumps(fields, default=str),
        )  # fmt: skip
        item = pb.Event(id=self._next_id(), time=float(event.get("log_time", time.time())), log=log)
        for sub in wanted:
            if self._on_reactor():
                sub.offer(item)
            else:  # a log line from another thread: hand it over
                sub.loop.call_soon_threadsafe(sub.offer, item)


__all__ = ["EventStreams", "QUEUE_LIMIT", "STOP", "Subscriber"]
