"""EventHub: server-sent events to browsers, with replay on reconnect.

Each client is a ``twisted.web`` request kept open. Writes never block the
reactor: the request's transport tells us (as a push producer) when the
client stops reading, and a client that falls more than ``BUFFER`` events
behind is disconnected rather than buffered without end.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IPushProducer, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request
from zope.interface import implementer

from ..log import Logger
from .broker import EventRing, SentEvent

PING = 15.0
RETRY_MS = 3000
BUFFER = 256


@implementer(IPushProducer)
class EventClient:
    """One open event stream."""

    def __init__(self, hub: EventHub, request: Request, private: bool) -> None:
        self.hub = hub
        self.request = request
        self.private = private
        self.paused = False
        self.backlog: list[bytes] = []
        self.closed = False

    def send(self, data: bytes) -> None:
        if self.closed:
            return
        if self.paused:
            if len(self.backlog) >= BUFFER:
                self.hub.log.warn("event stream client too slow, disconnecting", event="web-sse-drop")
                self.close()
                return
            self.backlog.append(data)
            return
        self.request.write(data)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.hub.clients.discard(self)
        transport = self.request.transport
        if transport is not None:
            transport.loseConnection()

    # IPushProducer: the transport's flow control
    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        backlog, self.backlog = self.backlog, []
        for data in backlog:
            self.send(data)

    def stopProducing(self) -> None:
        self.closed = True
        self.hub.clients.discard(self)


class EventHub:
    log = Logger()

    def __init__(self, ring: EventRing, clock: IReactorTime) -> None:
        self.ring = ring
        self.clients: set[EventClient] = set()
        self._ping = LoopingCall(self.ping)
        self._ping.clock = clock

    def start(self) -> None:
        self._ping.start(PING, now=False)

    def stop(self) -> None:
        if self._ping.running:
            self._ping.stop()
        for client in list(self.clients):
            client.close()

    def publish(self, kind: str, data: dict[str, Any], private: bool = False) -> SentEvent:
        event = self.ring.add(kind, data, private)
        frame = event.frame()
        for client in list(self.clients):
            if client.private or not event.private:
                client.send(frame)
        return event

    def ping(self) -> None:
        for client in list(self.clients):
            client.send(b": ping\n\n")

    def resource(self, private: bool) -> Resource:
        return EventStreamResource(self, private)


class EventStreamResource(Resource):
    isLeaf = True

    def __init__(self, hub: EventHub, private: bool) -> None:
        super().__init__()
        self.hub = hub
        self.private = private

    def render_GET(self, request: Request) -> Any:
        request.setHeader(b"content-type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"cache-control", b"no-cache")
        request.setHeader(b"x-accel-buffering", b"no")
        client = EventClient(self.hub, request, self.private)
        request.registerProducer(client, True)
        request.write(f"retry: {RETRY_MS}\n\n".encode())
        last = (request.getHeader(b"last-event-id") or b"").decode("ascii", "replace")
        if not last:  # EventSource can't set headers on its first connect; allow ?lastEventId=
            last = (request.args.get(b"lastEventId") or [b""])[0].decode("ascii", "replace")
        if last:
            missed = self.hub.ring.since(last)
            if missed is None:
                request.write(b"event: resync\ndata: {}\n\n")
            else:
                for e in missed:
                    if self.private or not e.private:
                        request.write(e.frame())
        self.hub.clients.add(client)
        request.notifyFinish().addBoth(lambda _: client.stopProducing())
        return NOT_DONE_YET
