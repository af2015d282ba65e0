"""The VPP emulator: VPP's binary API (socket transport) and the stats socket.

The rooms: ``transport.py`` (the epoll loop and framing), ``handlers.py`` (each
message's handler), ``show.py`` (the CLI), ``lb.py`` (the lb plugin's model),
``stats.py`` (the stats segment). This class composes them, decodes each message and
dispatches it under ``lock``, in arrival order, so old-style dumps end naturally with
the control_ping reply the client sends after them. Tests and tools reach the model
through ``Emulator.lock``. Runs on its own thread (or the main thread under the CLI).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.logger import LogLevel

from ..log import Logger, gate
from ..vppapi import find_api_dir
from ..vppapi.codec import compile_decoders, compile_encoders
from ..vppapi.messages import V2606_MISSING, ApiDefinitions
from .forward import Forwarder
from .handlers import ApiHandlers, Reply
from .lb import COUNTER_NAMES, ERROR_NAMES, CrashRefused, LbPlugin
from .lb_model import ip46, show_address
from .show import VERSIONS, LbCli
from .stats import StatsSegment
from .transport import MAX_MESSAGE, ApiTransport, Connection

AUTOREPLY = struct.Struct(">HIi")
AUTOFRAME = struct.Struct(">QIIHIi")  # frame header and an autoreply in one pack
UNIMPLEMENTED = -9
# Requests after which the stats segment may differ (new VIP slots, traffic, flushes).
ROUTE_TO = "/net/route/to"
STATS_CHANGING = frozenset({"lb_add_del_vip", "lb_add_del_vip_v2", "lb_conf", "cli_inband"})


class Emulator:
    log = Logger()

    def __init__(
        self,
        api_socket: str,
        stats_socket: str | None = None,
        api_dir: str | None = None,
        flavour: str = "master",
        gc_interval: float = 60.0,
        workers: int = 2,
        clock: Callable[[], float] = time.monotonic,
        forward: bool = False,
    ) -> None:
        self.api_socket = api_socket
        self.stats_socket = stats_socket
        self.flavour = flavour
        self.api = ApiDefinitions(
            find_api_dir(api_dir, "--api-dir"), V2606_MISSING if flavour == "v26.06" else frozenset()
        )
        self.decoders = compile_decoders(self.api.files, list(self.api.ids))
        encoders = compile_encoders(self.api.files, ["lb_vip_details", "lb_as_details", "lb_as_v2_details"])
        # Replies that carry only a retval ("autoreply"): packed with one struct call.
        self._autoreplies = {n for n, m in self.api.messages.items() if m.fields == ["_vl_msg_id", "context", "retval"]}
        self._clock = clock
        self.started = clock()
        self.lb = LbPlugin(flavour, now=self.uptime, workers=workers, gc_interval=gc_interval)
        self.show = LbCli(self.lb, flavour)
        self.handlers = ApiHandlers(self.api, self.lb, self.show, flavour, encoders)
        self.lock = threading.Lock()
        self.stats = StatsSegment()
        self.transport = ApiTransport(self._request, self._hand_over)
        # The latest requests as (name, unpacked message), for tests and debugging.
        self.requests: deque[tuple[str, Any]] = deque(maxlen=100_000)
        self.request_count = 0
        self._debug = gate.level <= LogLevel.debug
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_gc = 0.0
        # --forward: TCP on each VIP's address and port, relayed as VPP would pick (forward.py)
        self.forwarder = Forwarder(self.lb, self.lock, self.publish_stats) if forward else None

    def uptime(self) -> float:
        return self._clock() - self.started

    def cli(self, cmd: str) -> str:
        return self.show.run(cmd)

    # --- lifecycle ------------------------------------------------------------------
    def listen(self) -> None:
        self.transport.bind(self.api_socket, socket.SOCK_STREAM, "api")
        if self.stats_socket:
            self.transport.bind(self.stats_socket, socket.SOCK_SEQPACKET, "stats")
        self.publish_stats()
        if self.forwarder is not None:
            self.forwarder.start()

    def start(self) -> Emulator:
        """Listen and serve on a background thread (for tests and in-process use)."""
        self.listen()
        self._thread = threading.Thread(target=self.serve, name="vppemu", daemon=True)
        self._thread.start()
        return self

    def serve(self) -> None:
        while not self._stop.is_set():
            self.transport.poll(0.2)
            if self.lb.weights and self.uptime() - self._last_gc >= min(self.lb.gc_interval, 1.0):
                with self.lock:
                    self._last_gc = self.uptime()
                    self.lb.gc()
                    self.publish_stats()
        self.transport.shut()
        if self.forwarder is not None:
            self.forwarder.stop()

    def request_stop(self) -> None:
        """Ask ``serve`` to return (safe from a signal handler)."""
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self.stats.close()

    def _hand_over(self, sock: socket.socket) -> None:
        self.stats.hand_over(sock)  # an OSError (the client went away) is logged by the transport

    # --- dispatch ---------------------------------------------------------------------
    def _request(self, conn: Connection, body: bytes) -> None:
        msg_id = struct.unpack_from(">H", body)[0]
        name = self.api.names.get(msg_id)
        if name is None:
            self.log.error(
                "vppemu: client {client} sent unknown message id {id}; closing it", client=conn.number, id=msg_id
            )
            self.transport.close(conn)
            return
        try:
            decoder = self.decoders.get(name)
            req = decoder.unpack(body) if decoder is not None else self.api.messages[name].unpack(body, ntc=True)[0]
        except Exception as e:
            self.log.error(
                "vppemu: malformed {name} from client {client}: {error}; closing it",
                name=name,
                client=conn.number,
                error=e,
            )
            self.transport.close(conn)
            return
        self.request_count += 1
        if self._debug:
            self.log.debug("vppemu: {name} from client {client}", event="vppemu-request", name=name, client=conn.number)
        handler = self.handlers.table.get(name)
        with self.lock:
            self.requests.append((name, req))
            if handler is None:
                reply = self.api.reply_of(name)
                replies: list[Reply] = [(reply, {"retval": UNIMPLEMENTED})] if reply and reply in self.api.ids else []
            else:
                try:
                    replies = handler(conn, req)
                except CrashRefused as e:
                    self.log.error(
                        "vppemu: REFUSED {name}: a real VPP would abort here: {why}",
                        event="vppemu-crash-refused",
                        name=name,
                        why=str(e),
                    )
                    replies = [(self.api.reply_of(name) or "", {"retval": -7})]
            if name in STATS_CHANGING:
                self.publish_stats()
                if self.forwarder is not None:
                    self.forwarder.nudge()
        for reply_name, fields in replies:
            if reply_name in self._autoreplies and len(fields) == 1:  # the common case: just a retval
                conn.outbuf += AUTOFRAME.pack(
                    0, AUTOREPLY.size, 0, self.api.ids[reply_name], req.context, fields["retval"]
                )
            else:
                self._send(conn, reply_name, {**fields, "context": req.context})

    def _send(self, conn: Connection, name: str, fields: dict[str, Any]) -> None:
        msg_id = self.api.ids.get(name)
        if msg_id is None:
            return
        conn.queue(self.api.messages[name].pack({"_vl_msg_id": msg_id, **fields}))

    def publish_stats(self) -> None:
        lb = self.lb
        names = list(COUNTER_NAMES) if lb.counters else []
        # Vectors are published padded to a power of two (the extra VIP indexes read 0), so
        # adding VIPs rewrites the segment log2(n) times, not n times.
        width = 1 << max(4, (len(lb.counters[0][0]) - 1).bit_length()) if lb.counters else 0
        padded = [[row + [0] * (width - len(row)) for row in c] for c in lb.counters]
        # the VIPs' route counters: (packets, bytes) at each FIB entry's load-balance index
        routes = lb.fib.to
        span = 2 << max(4, (len(routes[0]) // 2 - 1).bit_length())
        padded.append([row + [0] * (span - len(row)) for row in routes])
        self.stats.update([*names, ROUTE_TO], padded, {"/sys/boottime": self.stats.boottime}, (ROUTE_TO,))

    def traffic(
        self, vip_prefix: str, flows: int, packets: int, protocol: str | None = None, port: int = 0, seed: int = 0
    ) -> str:
        """Python entry to the traffic simulator (same as the CLI command)."""
        cmd = (
            [vip_prefix]
            + ([f"protocol {protocol} port {port}"] if protocol else [])
            + [f"flows {flows} packets {packets} seed {seed}"]
        )
        with self.lock:
            out = self.show.traffic(" ".join(cmd).split())
            self.publish_stats()
        return out

    def new_flow_table(self, vip_prefix: str, protocol: int = 255, port: int = 0) -> list[str | None]:
        """Python entry for tests: the VIP's new-flow table, bucket by bucket (the AS's
        address, None for "no server"). Real VPP shows only counts; this is what they count."""
        net = ipaddress.ip_network(vip_prefix, strict=False)
        addr16 = ip46(net.network_address.packed)
        plen = net.prefixlen + (96 if net.version == 4 else 0)
        with self.lock:
            vip = self.lb.find_vip(addr16, plen, protocol, port)
            if vip is None:
                raise KeyError(f"no such VIP {vip_prefix} protocol {protocol} port {port}")
            self.lb.refresh(vip)
            out: list[str | None] = []
            for asi in vip.table:
                a = self.lb.ases[asi] if asi else None
                out.append(show_address(a.address) if a is not None else None)
            return out


__all__ = ["ERROR_NAMES", "Emulator", "MAX_MESSAGE", "VERSIONS"]
