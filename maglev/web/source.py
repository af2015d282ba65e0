"""DaemonSource: one maglevd as the web UI sees it, through the Maglev API.

The same class serves both modes: inside maglevd it calls the servicer
in-process (``LocalStub``), in maglevd-frontend it calls a daemon over a gRPC
channel (``MaglevStub``). Either way it keeps a short-lived cache of the
daemon's state (refetched at most every ``MIN_GAP`` seconds, and only when an
event made it stale or it is older than ``MAX_AGE``), forwards the daemon's
event stream, and re-establishes the stream when the daemon comes back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import grpc

from ..api.client import ClientAuth
from ..api.gen.maglev.v1 import maglev_pb2 as pb
from ..api.local import ApiError
from ..log import Logger
from .view import DaemonState, DaemonStatus

MAX_AGE = 1.0  # seconds a cached state is good for without events
MIN_GAP = 0.2  # never refetch more often than this, however many events arrive
CALL_TIMEOUT = 10.0
HEARTBEAT = 5.0  # a remote daemon is asked for its version this often
RETRY_MAX = 10.0

WATCH = pb.WatchRequest(backend=True, frontend=True, vpp=True, log=True, log_level="info")


def rpc_failure(e: BaseException) -> tuple[grpc.StatusCode, str] | None:
    """(code, details) for an API error from either kind of stub; None for anything else."""
    if isinstance(e, ApiError | grpc.aio.AioRpcError):
        return e.code(), e.details() or e.code().name
    return None


class DaemonSource:
    log = Logger()

    def __init__(
        self,
        name: str,
        address: str,
        stub: Any,
        on_event: Callable[[DaemonSource, pb.Event], None],
        on_status: Callable[[DaemonSource], None],
        remote: bool,
        clock: Callable[[], float] = time.time,
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        self.name = name
        self.address = address
        self.stub = stub
        self.on_event = on_event
        self.on_status = on_status
        self.remote = remote
        self.clock = clock
        self.channel = channel
        self.connected = not remote
        self.error = "" if not remote else "connecting"
        self.cached: DaemonState | None = None
        self.stale = True
        self.changed = False  # an operator action: the next read must show its effect
        self._pending: asyncio.Future[DaemonState | None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._streaming = False

    @classmethod
    def over_channel(
        cls,
        name: str,
        address: str,
        on_event: Callable[[DaemonSource, pb.Event], None],
        on_status: Callable[[DaemonSource], None],
        auth: ClientAuth | None = None,
    ) -> DaemonSource:
        auth = auth or ClientAuth()
        channel = auth.aio_channel(address)
        return cls(name, address, auth.stub(channel), on_event, on_status, remote=True, channel=channel)

    @property
    def status(self) -> DaemonStatus:
        return DaemonStatus(self.name, self.address, self.connected, self.error)

    # --- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        self._tasks.append(asyncio.ensure_future(self._watch()))
        if self.remote:
            self._tasks.append(asyncio.ensure_future(self._heartbeat()))

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.channel is not None:
            await self.channel.close()

    def _set_status(self, connected: bool, error: str) -> None:
        if (connected, error) == (self.connected, self.error):
            return
        was = self.connected
        self.connected, self.error = connected, error
        self.stale = True
        if was != connected:
            self.log.info(
                "maglevd {maglevd} {what}",
                event="web-source",
                maglevd=self.name,
                address=self.address,
                what="connected" if connected else f"disconnected: {error}",
            )
        self.on_status(self)

    async def _watch(self) -> None:
        delay = 1.0
        while True:
            try:
                await self.stub.GetVersion(pb.GetVersionRequest(), timeout=CALL_TIMEOUT)
                self._set_status(True, "")
                delay = 1.0
                self._streaming = True
                async for event in self.stub.WatchEvents(WATCH):
                    if event.WhichOneof("kind") != "log" or event.log.event.startswith("lb-sync"):
                        self.stale = True
                    self.on_event(self, event)
                reason = "event stream ended"
            except asyncio.CancelledError:
                raise
            except Exception as e:
                failure = rpc_failure(e)
                reason = failure[1] if failure else f"{type(e).__name__}: {e}"
            self._streaming = False
            if self.remote:
                self._set_status(False, reason)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            try:
                await self.stub.GetVersion(pb.GetVersionRequest(), timeout=HEARTBEAT / 2)
            except Exception as e:
                failure = rpc_failure(e)
                self._set_status(False, failure[1] if failure else str(e))
            else:
                if self._streaming:  # a missed heartbeat on a live stream was a slow answer
                    self._set_status(True, "")

    # --- reading ------------------------------------------------------------------------
    async def state(self) -> DaemonState | None:
        """The daemon's state, from the cache when it is fresh; the last one known when unreachable."""
        cached = self.cached
        if cached is not None and self.remote and not self.connected:
            return cached  # the heartbeat and the stream say when it is back
        if cached is not None and not self.changed:
            age = self.clock() - cached.fetched
            if age < MIN_GAP or (age < MAX_AGE and not self.stale):
                return cached
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._refresh())
        return await asyncio.shield(self._pending)

    async def _refresh(self) -> DaemonState | None:
        try:
            self.stale = self.changed = False
            state = await self._fetch()
            self.cached = state
            if self.remote:
                self._set_status(True, "")
            return state
        except asyncio.CancelledError:
            raise
        except Exception as e:
            failure = rpc_failure(e)
            if failure is None:
                raise
            self.stale = True
            if self.remote:
                self._set_status(False, failure[1])
            return self.cached
        finally:
            self._pending = None

    async def _fetch(self) -> DaemonState:
        s, t = self.stub, CALL_TIMEOUT
        version, frontends, backends = await asyncio.gather(
            s.GetVersion(pb.GetVersionRequest(), timeout=t),
            s.ListFrontends(pb.ListFrontendsRequest(), timeout=t),
            s.ListBackends(pb.ListBackendsRequest(), timeout=t),
        )
        vpp: pb.VPPInfo | None = None
        vpp_error = ""
        counters: dict[str, pb.VipCounters] = {}
        try:
            vpp = await s.GetVPPInfo(pb.GetVPPInfoRequest(), timeout=t)
            counters = {c.frontend: c for c in (await s.GetVPPLBCounters(pb.GetVPPLBCountersRequest(), timeout=t)).vips}
        except Exception as e:
            failure = rpc_failure(e)
            if failure is None or failure[0] != grpc.StatusCode.UNAVAILABLE:
                raise
            vpp, vpp_error = None, failure[1]
        return DaemonState(
            version=version,
            frontends=list(frontends.frontends),
            backends={b.name: b for b in backends.backends},
            vpp=vpp,
            vpp_error=vpp_error,
            counters=counters,
            fetched=self.clock(),
        )

    # --- acting ---------------------------------------------------------------------------
    async def call(self, method: str, request: Any, on_behalf_of: str = "") -> Any:
        """One API call on the operator's behalf (same validation and errors as maglevc); a remote
        maglevd's audit line names ``on_behalf_of`` beside this frontend's own token."""
        metadata = (("maglev-on-behalf-of", on_behalf_of),) if on_behalf_of and self.remote else ()
        try:
            return await getattr(self.stub, method)(request, timeout=CALL_TIMEOUT, metadata=metadata)
        finally:
            self.stale = self.changed = True
