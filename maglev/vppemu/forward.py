"""The emulator's forwarding mode (``--forward``): a dry-run and demo aid, not a dataplane.

It accepts TCP connections on each TCP VIP's own address and port (a host prefix with
an address this machine has: the demo's VIPs are on loopback) and relays the bytes to
the application server VPP would pick for that flow: the flow hash of the client's
address and port, the VIP's new-flow table, the worker's sticky table with its flow
timeout (``flows.FlowTables.packet``, the path the traffic simulator takes too).

Every read from the client is one packet on that path: it is counted in the VIP's
counters and keeps the flow's sticky entry alive. When a packet of a connection would
go to another AS (its AS was flushed, or the flow idled past the timeout and hashes
elsewhere now), the connection is reset, as the new AS would reset it. No server: reset
at once. Bytes back from the AS go straight to the client, as with direct server
return. Runs an asyncio loop on a thread of its own; the model is read under the
emulator's lock.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..log import Logger
from .lb_model import flow_hash, ip46, show_address

if TYPE_CHECKING:
    from .lb import LbPlugin
    from .lb_model import Vip

TCP = 6
TICK = 0.5  # seconds between looks at the VIP list, the flow timeout and the counters
CONNECT_TIMEOUT = 3.0
CHUNK = 64 * 1024
ListenKey = tuple[int, bytes, int]  # VIP index, ip46 address, port


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), not a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


def forwardable(vip: Vip) -> bool:
    """A TCP VIP on one address and one port: what a listening socket can stand in for."""
    return not vip.deleted and vip.protocol == TCP and vip.port != 0 and vip.plen == 128


class Forwarder:
    log = Logger(namespace="maglev.vppemu.server.Emulator")

    def __init__(self, lb: LbPlugin, lock: threading.Lock, publish: Callable[[], None]) -> None:
        self.lb = lb
        self.lock = lock
        self.publish = publish  # the stats segment, under the lock
        self.loop = asyncio.new_event_loop()
        self.servers: dict[ListenKey, asyncio.Server] = {}
        self.connections: dict[int, set[asyncio.StreamWriter]] = {}  # VIP index -> client sides
        self.refused: set[ListenKey] = set()  # could not listen: said once
        self.packets = 0  # since the last tick
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._ticking: asyncio.Lock | None = None  # one look at a time (made on the loop)

    # --- lifecycle (any thread) --------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="vppemu-forward", daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> None:
        if self._thread is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._shut(), self.loop)
        try:
            fut.result(10)
        except Exception:  # stopping regardless
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self._thread = None
        self.loop.close()

    def nudge(self) -> None:
        """The VIPs may have changed: look now rather than at the next tick (any thread)."""
        self.loop.call_soon_threadsafe(lambda: self.loop.create_task(self._tick()))

    def sync(self, timeout: float = 10.0) -> None:
        """Look at the VIPs and the flow timeout now and return when done (any thread but the loop's)."""
        asyncio.run_coroutine_threadsafe(self._tick(), self.loop).result(timeout)

    def listening(self) -> list[str]:
        """``address:port`` of each VIP served now (tests, the ready line)."""
        return sorted(f"{show_address(addr)}:{port}" for _, addr, port in self.servers)

    # --- the loop's thread -------------------------------------------------------------
    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._ticking = asyncio.Lock()
        self.loop.create_task(self._ticker())
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    async def _ticker(self) -> None:
        while True:
            await self._tick()
            await asyncio.sleep(TICK)

    async def _tick(self) -> None:
        assert self._ticking is not None
        async with self._ticking:
            await self._look()

    async def _look(self) -> None:
        with self.lock:
            wanted = {(v.index, v.prefix, v.port) for v in self.lb.live_vips() if forwardable(v)}
            self.lb.flows.expire(self.lb.now())  # idle flows lose their AS, as VPP's timeout does
            if self.packets:
                self.packets = 0
                self.lb.flows.recount()
                self.publish()
        for key in [k for k in self.servers if k not in wanted]:
            await self._unlisten(key)
        for key in sorted(wanted - set(self.servers) - self.refused):
            await self._listen(key)

    async def _listen(self, key: ListenKey) -> None:
        index, addr, port = key
        host = show_address(addr)
        try:
            self.servers[key] = await asyncio.start_server(
                lambda r, w: self._client(index, r, w), host, port, reuse_address=True
            )
        except OSError as e:
            self.refused.add(key)
            self.log.warn(
                "vppemu: not forwarding VIP {address}:{port}: {error} (only an address this machine has "
                "can be listened on, such as a loopback address)",
                event="vppemu-forward-skipped",
                address=host,
                port=port,
                error=e.strerror or str(e),
            )
            return
        self.log.info("vppemu: forwarding VIP {address}:{port}", event="vppemu-forward", address=host, port=port)

    async def _unlisten(self, key: ListenKey) -> None:
        server = self.servers.pop(key)
        server.close()
        for writer in self.connections.pop(key[0], set()):
            _reset(writer)  # the VIP is gone: so are its flows
        await server.wait_closed()

    async def _shut(self) -> None:
        for key in list(self.servers):
            await self._unlisten(key)
        for task in asyncio.all_tasks(self.loop):
            if task is not asyncio.current_task():
                task.cancel()

    def _vip(self, index: int) -> Vip | None:
        vip = self.lb.vips[index] if index < len(self.lb.vips) else None
        return vip if vip is not None and forwardable(vip) else None

    def _hash(self, index: int, peer: tuple[Any, ...]) -> int | None:
        """The flow hash of a client's connection to the VIP, as VPP's lb node computes it."""
        with self.lock:
            vip = self._vip(index)
            if vip is None:
                return None
            src = ip46(ipaddress.ip_address(peer[0]).packed)
            return flow_hash(src, vip.prefix, int(peer[1]), vip.port, vip.src_ip_sticky)

    def _packet(self, index: int, h: int, payload: int = 0) -> tuple[int, bytes, int]:
        """One packet of the flow (``payload`` bytes after the headers) through VPP's path:
        (AS index, its address, the port to reach it on); (0, b"", 0) when it is dropped or
        the VIP is gone."""
        with self.lock:
            vip = self._vip(index)
            if vip is None:
                return 0, b"", 0
            self.lb.refresh(vip)
            size = payload + (40 if vip.is_ip4 else 60)  # the IP packet: IP and TCP headers, then data
            asi = self.lb.flows.packet(vip, h, self.lb.now(), size)
            self.packets += 1
            a = self.lb.ases[asi] if asi else None
            if a is None:
                return 0, b"", 0
            return asi, a.address, vip.target_port if vip.type.is_nat else vip.port

    async def _client(self, index: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        h = self._hash(index, writer.get_extra_info("peername"))
        asi, address, port = self._packet(index, h) if h is not None else (0, b"", 0)  # the SYN
        if h is None or not asi:
            _reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(show_address(address), port), CONNECT_TIMEOUT
            )
        except (TimeoutError, OSError):
            _reset(writer)  # what the client of an unreachable AS sees in the end
            return
        flows = self.connections.setdefault(index, set())
        flows.add(writer)
        try:
            await asyncio.gather(
                self._upstream(index, h, asi, reader, up_writer, writer),
                self._downstream(up_reader, writer),
            )
        except (OSError, asyncio.IncompleteReadError):
            _reset(writer)
            _reset(up_writer)
        finally:
            flows.discard(writer)
            for w in (writer, up_writer):
                if not w.transport.is_closing():
                    w.close()

    async def _upstream(
        self,
        index: int,
        h: int,
        asi: int,
        reader: asyncio.StreamReader,
        to_as: asyncio.StreamWriter,
        client: asyncio.StreamWriter,
    ) -> None:
        while data := await reader.read(CHUNK):
            if self._packet(index, h, len(data))[0] != asi:
                _reset(client)  # this packet goes to another AS now, which knows no such connection
                _reset(to_as)
                return
            to_as.write(data)
            await to_as.drain()
        if not to_as.transport.is_closing() and to_as.can_write_eof():
            to_as.write_eof()

    @staticmethod
    async def _downstream(from_as: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        while data := await from_as.read(CHUNK):
            client.write(data)
            await client.drain()
        if not client.transport.is_closing() and client.can_write_eof():
            client.write_eof()


__all__ = ["Forwarder", "forwardable"]
