"""The emulator's sockets: VPP's binary API (socket transport) and the stats socket.

One selectors loop on its own thread serves many clients; requests are handled
in arrival order, so old-style dumps end naturally with the control_ping reply
the client sends after them. A malformed frame closes that connection only.
Tests and tools reach the model through ``Emulator.lock``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import select
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.logger import LogLevel

from ..log import Logger, gate
from ..vppapi import FRAME, find_api_dir
from ..vppapi.codec import compile_decoders, compile_encoders
from ..vppapi.messages import V2606_MISSING, ApiDefinitions
from .lb import (
    COUNTER_NAMES,
    ERROR_NAMES,
    NO_SUCH_ENTRY,
    OK,
    CrashRefused,
    LbPlugin,
    Vip,
    ip46,
    is_ip4,
    show_address,
)
from .stats import StatsSegment

AUTOREPLY = struct.Struct(">HIi")
AUTOFRAME = struct.Struct(">QIIHIi")  # frame header and an autoreply in one pack
MAX_MESSAGE = 8 * 1024 * 1024
UNIMPLEMENTED = -9
VERSIONS = {
    "master": ("26.10-rc0~374-gb575ec2c56d", "lb 1.2.0"),
    "v26.06": ("26.06-release", "lb 1.1.0"),
}
Reply = tuple[str, dict[str, Any]]
# Requests after which the stats segment may differ (new VIP slots, traffic, flushes).
STATS_CHANGING = frozenset({"lb_add_del_vip", "lb_add_del_vip_v2", "lb_conf", "cli_inband"})


class _Conn:
    def __init__(self, sock: socket.socket, number: int) -> None:
        self.sock = sock
        self.number = number
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.closing = False
        self.name = ""
        self.events = select.EPOLLIN


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
    ) -> None:
        self.api_socket = api_socket
        self.stats_socket = stats_socket
        self.flavour = flavour
        self.api = ApiDefinitions(find_api_dir(api_dir), V2606_MISSING if flavour == "v26.06" else frozenset())
        self.decoders = compile_decoders(self.api.files, list(self.api.ids))
        self.encoders = compile_encoders(self.api.files, ["lb_vip_details", "lb_as_details", "lb_as_v2_details"])
        # Replies that carry only a retval ("autoreply"): packed with one struct call.
        self._autoreplies = {n for n, m in self.api.messages.items() if m.fields == ["_vl_msg_id", "context", "retval"]}
        self._clock = clock
        self.started = clock()
        self.lb = LbPlugin(flavour, now=self.uptime, workers=workers, gc_interval=gc_interval)
        self.lock = threading.Lock()
        self.stats = StatsSegment()
        # The latest requests as (name, unpacked message), for tests and debugging.
        self.requests: deque[tuple[str, Any]] = deque(maxlen=100_000)
        self.request_count = 0
        self._ep = select.epoll()
        self._fds: dict[int, Any] = {}  # fd -> _Conn, or (role, listening socket)
        self._conns: dict[int, _Conn] = {}
        self._debug = gate.level <= LogLevel.debug
        self._next_client = 1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listeners: list[socket.socket] = []
        self._last_gc = 0.0
        self._handlers: dict[str, Callable[[_Conn, Any], list[Reply]]] = {
            "sockclnt_create": self._sockclnt_create,
            "sockclnt_delete": self._sockclnt_delete,
            "control_ping": self._control_ping,
            "memclnt_keepalive": lambda c, r: [("memclnt_keepalive_reply", {"retval": OK})],
            "show_version": self._show_version,
            "show_threads": self._show_threads,
            "cli_inband": self._cli_inband,
            "lb_conf": self._lb_conf,
            "lb_conf_get": self._lb_conf_get,
            "lb_add_del_vip": self._lb_add_del_vip,
            "lb_add_del_vip_v2": self._lb_add_del_vip,
            "lb_add_del_as": self._lb_add_del_as,
            "lb_add_del_as_v2": self._lb_add_del_as,
            "lb_as_set_weight": self._lb_as_set_weight,
            "lb_flush_vip": self._lb_flush_vip,
            "lb_vip_dump": self._lb_vip_dump,
            "lb_as_dump": self._lb_as_dump,
            "lb_as_v2_dump": self._lb_as_dump,
            "lb_add_del_intf_nat4": self._lb_intf_nat,
            "lb_add_del_intf_nat6": self._lb_intf_nat,
        }

    def uptime(self) -> float:
        return self._clock() - self.started

    # --- lifecycle ------------------------------------------------------------------
    def listen(self) -> None:
        self._listeners.append(self._bind(self.api_socket, socket.SOCK_STREAM, "api"))
        if self.stats_socket:
            self._listeners.append(self._bind(self.stats_socket, socket.SOCK_SEQPACKET, "stats"))
        self.publish_stats()

    def _bind(self, path: str, kind: int, role: str) -> socket.socket:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        if os.path.exists(path):
            os.unlink(path)
        s = socket.socket(socket.AF_UNIX, kind)
        s.bind(path)
        s.listen(64)
        s.setblocking(False)
        self._fds[s.fileno()] = (role, s)
        self._ep.register(s.fileno(), select.EPOLLIN)
        return s

    def start(self) -> Emulator:
        """Listen and serve on a background thread (for tests and in-process use)."""
        self.listen()
        self._thread = threading.Thread(target=self.serve, name="vppemu", daemon=True)
        self._thread.start()
        return self

    def serve(self) -> None:
        while not self._stop.is_set():
            for fd, events in self._ep.poll(0.2):
                target = self._fds.get(fd)
                if target is None:
                    continue
                try:
                    self._event(target, events)
                except Exception:
                    self.log.failure("vppemu: internal error; dropping that connection")
                    if isinstance(target, _Conn):
                        self._close(target)
            if self.lb.weights and self.uptime() - self._last_gc >= min(self.lb.gc_interval, 1.0):
                with self.lock:
                    self._last_gc = self.uptime()
                    self.lb.gc()
                    self.publish_stats()
        for conn in list(self._conns.values()):
            self._close(conn)
        for s in self._listeners:
            self._ep.unregister(s.fileno())
            s.close()
        self._ep.close()
        for path in (self.api_socket, self.stats_socket):
            if path and os.path.exists(path):
                os.unlink(path)

    def request_stop(self) -> None:
        """Ask ``serve`` to return (safe from a signal handler)."""
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self.stats.close()

    # --- I/O ------------------------------------------------------------------------------
    def _event(self, target: Any, events: int) -> None:
        if isinstance(target, tuple) and target[0] == "api":
            sock, _ = target[1].accept()
            sock.setblocking(False)
            new = _Conn(sock, self._next_client)
            self._next_client += 1
            self._conns[sock.fileno()] = new
            self._fds[sock.fileno()] = new
            self._ep.register(sock.fileno(), select.EPOLLIN)
            return
        if isinstance(target, tuple):
            sock, _ = target[1].accept()
            try:
                self.stats.hand_over(sock)
            except OSError as e:
                self.log.warn("vppemu: stats client went away: {error}", error=e)
            finally:
                sock.close()
            return
        conn: _Conn = target
        if events & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
            try:
                data = conn.sock.recv(262144)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                data = b""
            if data == b"":
                self._close(conn)
                return
            if data:
                conn.inbuf += data
                self._frames(conn)
                if conn.inbuf and conn.sock.fileno() >= 0:
                    # vpp_papi writes the header and the body separately: the body is
                    # usually there already, and reading it now saves a loop turn.
                    try:
                        more = conn.sock.recv(262144)
                    except OSError:
                        more = None
                    if more:
                        conn.inbuf += more
                        self._frames(conn)
        if events & select.EPOLLOUT:
            self._flush(conn)

    def _frames(self, conn: _Conn) -> None:
        buf = conn.inbuf
        pos, end = 0, len(buf)
        while end - pos >= FRAME.size and not conn.closing:
            _, length, _ = FRAME.unpack_from(buf, pos)
            if length > MAX_MESSAGE or length < 2:
                self.log.error(
                    "vppemu: client {client} sent a frame of {length} bytes; closing it",
                    client=conn.number,
                    length=length,
                )
                self._close(conn)
                return
            if end - pos < FRAME.size + length:
                break  # the rest of this frame has not arrived yet
            start = pos + FRAME.size
            pos = start + length
            self._request(conn, bytes(buf[start:pos]))
        if pos:
            del buf[:pos]
        self._flush(conn)

    def _request(self, conn: _Conn, body: bytes) -> None:
        msg_id = struct.unpack_from(">H", body)[0]
        name = self.api.names.get(msg_id)
        if name is None:
            self.log.error(
                "vppemu: client {client} sent unknown message id {id}; closing it", client=conn.number, id=msg_id
            )
            self._close(conn)
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
            self._close(conn)
            return
        self.request_count += 1
        if self._debug:
            self.log.debug("vppemu: {name} from client {client}", event="vppemu-request", name=name, client=conn.number)
        handler = self._handlers.get(name)
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
        for reply_name, fields in replies:
            if reply_name in self._autoreplies and len(fields) == 1:  # the common case: just a retval
                conn.outbuf += AUTOFRAME.pack(
                    0, AUTOREPLY.size, 0, self.api.ids[reply_name], req.context, fields["retval"]
                )
            else:
                self._send(conn, reply_name, {**fields, "context": req.context})

    def _send(self, conn: _Conn, name: str, fields: dict[str, Any]) -> None:
        msg_id = self.api.ids.get(name)
        if msg_id is None:
            return
        data = self.api.messages[name].pack({"_vl_msg_id": msg_id, **fields})
        conn.outbuf += FRAME.pack(0, len(data), 0) + data

    def _flush(self, conn: _Conn) -> None:
        while conn.outbuf:
            try:
                sent = conn.sock.send(conn.outbuf)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._close(conn)  # the client vanished (e.g. mid-dump)
                return
            del conn.outbuf[:sent]
        want = select.EPOLLIN | (select.EPOLLOUT if conn.outbuf else 0)
        if conn.closing and not conn.outbuf:
            self._close(conn)
            return
        if want != conn.events and conn.sock.fileno() >= 0:
            conn.events = want
            self._ep.modify(conn.sock.fileno(), want)

    def _close(self, conn: _Conn) -> None:
        fd = conn.sock.fileno()
        if fd >= 0:
            self._ep.unregister(fd)
            self._conns.pop(fd, None)
            self._fds.pop(fd, None)
            conn.sock.close()

    def publish_stats(self) -> None:
        lb = self.lb
        names = list(COUNTER_NAMES) if lb.counters else []
        # Vectors are published padded to a power of two (the extra VIP indexes read 0), so
        # adding VIPs rewrites the segment log2(n) times, not n times.
        width = 1 << max(4, (len(lb.counters[0][0]) - 1).bit_length()) if lb.counters else 0
        padded = [[row + [0] * (width - len(row)) for row in c] for c in lb.counters]
        self.stats.update(names, padded, {"/sys/boottime": self.stats.boottime})

    # --- memclnt / vpe / vlib ---------------------------------------------------------
    def _sockclnt_create(self, conn: _Conn, req: Any) -> list[Reply]:
        conn.name = req.name
        table = self.api.table()
        return [
            (
                "sockclnt_create_reply",
                {"response": 0, "index": 0x80000000 | conn.number, "count": len(table), "message_table": table},
            )
        ]

    def _sockclnt_delete(self, conn: _Conn, req: Any) -> list[Reply]:
        conn.closing = True
        return [("sockclnt_delete_reply", {"response": 1})]

    def _control_ping(self, conn: _Conn, req: Any) -> list[Reply]:
        return [
            ("control_ping_reply", {"retval": OK, "client_index": 0x80000000 | conn.number, "vpe_pid": os.getpid()})
        ]

    def _show_version(self, conn: _Conn, req: Any) -> list[Reply]:
        version, _ = VERSIONS[self.flavour]
        return [
            (
                "show_version_reply",
                {
                    "retval": OK,
                    "program": "vpe",
                    "version": version,
                    "build_date": "2026-08-22T00:00:00",
                    "build_directory": "/vpp-maglev/emulator",
                },
            )
        ]

    def _show_threads(self, conn: _Conn, req: Any) -> list[Reply]:
        threads = [
            {"id": 0, "name": "vpp_main", "type": "", "pid": os.getpid(), "cpu_id": 0, "core": 0, "cpu_socket": 0}
        ]
        for w in range(self.lb.workers):
            threads.append(
                {
                    "id": w + 1,
                    "name": f"vpp_wk_{w}",
                    "type": "workers",
                    "pid": os.getpid(),
                    "cpu_id": w + 1,
                    "core": w + 1,
                    "cpu_socket": 0,
                }
            )
        return [("show_threads_reply", {"retval": OK, "count": len(threads), "thread_data": threads})]

    def _cli_inband(self, conn: _Conn, req: Any) -> list[Reply]:
        return [("cli_inband_reply", {"retval": OK, "reply": self.cli(req.cmd)})]

    # --- lb ---------------------------------------------------------------------------------
    def _prefix(self, pfx: Any) -> tuple[bytes, int]:
        af = int(pfx.address.af)
        raw = bytes(pfx.address.un.ip6) if af == 1 else bytes(pfx.address.un.ip4) + bytes(12)
        return self.lb.vip_key(af, raw, int(pfx.len))

    def _vip(self, req: Any) -> Vip | None:
        prefix, plen = self._prefix(req.pfx)
        return self.lb.find_vip(prefix, plen, int(req.protocol), int(req.port))

    @staticmethod
    def _address(addr: Any) -> bytes:
        return bytes(addr.un.ip6) if int(addr.af) == 1 else ip46(bytes(addr.un.ip4))

    def _lb_conf(self, conn: _Conn, req: Any) -> list[Reply]:
        rv = self.lb.lb_conf(
            bytes(req.ip4_src_address),
            bytes(req.ip6_src_address),
            int(req.sticky_buckets_per_core),
            int(req.flow_timeout),
        )
        return [("lb_conf_reply", {"retval": rv})]

    def _lb_conf_get(self, conn: _Conn, req: Any) -> list[Reply]:
        c = self.lb.conf
        return [
            (
                "lb_conf_get_reply",
                {
                    "retval": OK,
                    "ip4_src_address": c.ip4_src,
                    "ip6_src_address": c.ip6_src,
                    "sticky_buckets_per_core": c.sticky_buckets_per_core,
                    "flow_timeout": c.flow_timeout,
                },
            )
        ]

    def _lb_add_del_vip(self, conn: _Conn, req: Any) -> list[Reply]:
        reply = self.api.reply_of(type(req).__name__) or "lb_add_del_vip_reply"
        prefix, plen = self._prefix(req.pfx)
        if req.is_del:
            rv = self.lb.del_vip(prefix, plen, int(req.protocol), int(req.port))
        else:
            rv = self.lb.add_vip(
                prefix, plen, int(req.protocol), int(req.port), int(req.encap), int(req.new_flows_table_length),
                src_ip_sticky=bool(getattr(req, "src_ip_sticky", False)), dscp=int(req.dscp), srv_type=int(req.type),
                target_port=int(req.target_port),
            )  # fmt: skip
        return [(reply, {"retval": rv})]

    def _lb_add_del_as(self, conn: _Conn, req: Any) -> list[Reply]:
        reply = f"{type(req).__name__}_reply"
        vip = self._vip(req)
        if vip is None:
            return [(reply, {"retval": NO_SUCH_ENTRY})]
        addr = self._address(req.as_address)
        if req.is_del:
            rv = self.lb.del_as(vip, addr, bool(req.is_flush))
        else:
            weight = int(getattr(req, "weight", 100))
            rv = self.lb.add_as(vip, addr, weight, bool(req.is_flush) and hasattr(req, "weight"))
        return [(reply, {"retval": rv})]

    def _lb_as_set_weight(self, conn: _Conn, req: Any) -> list[Reply]:
        vip = self._vip(req)
        rv = (
            NO_SUCH_ENTRY
            if vip is None
            else self.lb.set_weight(vip, self._address(req.as_address), int(req.weight), bool(req.is_flush))
        )
        return [("lb_as_set_weight_reply", {"retval": rv})]

    def _lb_flush_vip(self, conn: _Conn, req: Any) -> list[Reply]:
        return [("lb_flush_vip_reply", {"retval": self.lb.flush_vip(self._vip(req))})]

    def _lb_intf_nat(self, conn: _Conn, req: Any) -> list[Reply]:
        rv = OK if int(req.sw_if_index) == 0 else -2  # only local0 exists here
        return [(f"{type(req).__name__}_reply", {"retval": rv})]

    def _raw_prefix(self, vip: Vip) -> dict[str, Any]:
        """The dump's prefix as raw union bytes (what the wire carries)."""
        v4 = is_ip4(vip.prefix)
        if self.lb.weights:
            length = vip.plen - 96 if vip.is_ip4 else vip.plen
        else:
            length = vip.plen  # 26.06 returns the internal ip46 length (96 + len for IPv4)
        un = vip.prefix[12:] + bytes(12) if v4 else vip.prefix
        return {"address": {"af": 0 if v4 else 1, "un": un}, "len": length}

    def _raw_vip(self, vip: Vip) -> dict[str, Any]:
        protocol = vip.protocol if self.lb.weights else 0  # 26.06: htonl(proto) into a u8
        return {"pfx": self._raw_prefix(vip), "protocol": protocol, "port": vip.port}

    @staticmethod
    def _raw_address(addr16: bytes) -> dict[str, Any]:
        return {"af": 0, "un": addr16[12:] + bytes(12)} if is_ip4(addr16) else {"af": 1, "un": addr16}

    def _details(self, conn: _Conn, name: str, context: int, fields: dict[str, Any]) -> None:
        data = self.encoders[name].pack({"_vl_msg_id": self.api.ids[name], "context": context, **fields})
        conn.outbuf += FRAME.pack(0, len(data), 0) + data

    def _lb_vip_dump(self, conn: _Conn, req: Any) -> list[Reply]:
        for vip in self.lb.live_vips():
            encap = int(vip.type.api_encap) if self.lb.weights else int(vip.type)
            # dscp and srv_type share one byte; srv_type is copied without a byte swap;
            # target_port is swapped twice; flow_table_length is a u16 (26.06: always 0).
            shared = vip.dscp if vip.type.name.endswith("L3DSR") else vip.srv_type
            fields = {
                "vip": self._raw_vip(vip),
                "encap": encap,
                "dscp": shared,
                "srv_type": shared << 24,
                "target_port": int.from_bytes(vip.target_port.to_bytes(2, "big"), "little"),
                "flow_table_length": vip.new_flows_table_length & 0xFFFF if self.lb.weights else 0,
            }
            self._details(conn, "lb_vip_details", req.context, fields)
        return []

    def _lb_as_dump(self, conn: _Conn, req: Any) -> list[Reply]:
        v2 = type(req).__name__ == "lb_as_v2_dump"
        name = "lb_as_v2_details" if v2 else "lb_as_details"
        raw = bytes(req.pfx.address.un.ip6)
        everything = raw == bytes(16)
        for vip in [v for v in self.lb.vips[1:] if v is not None]:
            if not everything:
                # The handler compares the raw union (IPv4 in bytes 0-3) with the stored
                # IPv4-mapped form (bytes 12-15): an IPv4 filter never matches.
                if raw != vip.prefix or int(req.protocol) != vip.protocol or int(req.port) != vip.port:
                    continue
            raw_vip = self._raw_vip(vip)
            for a in self.lb.ases_of(vip):
                fields: dict[str, Any] = {
                    "vip": raw_vip,
                    "app_srv": self._raw_address(a.address),
                    "flags": 1 if a.used else 0,
                    "in_use_since": int(a.last_used),
                }
                if v2:
                    fields.update(weight=a.weight, num_buckets=a.buckets)
                self._details(conn, name, req.context, fields)
        return []

    # --- CLI ------------------------------------------------------------------------------
    def cli(self, cmd: str) -> str:
        words = cmd.split()
        if words[:2] == ["show", "version"]:
            version, _ = VERSIONS[self.flavour]
            return f"vpp v{version} built by vpp-maglev on emulator at 2026-08-22T00:00:00\n"
        if words[:3] == ["show", "lb", "vips"]:
            return self._show_vips(verbose="verbose" in words[3:])
        if words[:2] == ["show", "lb"]:
            c = self.lb.conf
            return (
                f" Load-Balancer: ip4-src-address {show_address(ip46(c.ip4_src))} "
                f"ip6-src-address {show_address(c.ip6_src)}\n"
                f"  sticky-buckets-per-core {c.sticky_buckets_per_core} flow-timeout {c.flow_timeout}\n"
                f"  #vips: {len(self.lb.live_vips())} "
                f"#ass: {sum(1 for a in self.lb.ases[1:] if a is not None and a.used)}\n"
            )
        if words[:3] == ["test", "lb", "traffic"]:
            return self._cli_traffic(words[3:])
        return f"unknown input `{cmd}'\n"

    def _show_vips(self, verbose: bool) -> str:
        out = []
        for vip in self.lb.live_vips():
            plen = vip.plen - 96 if vip.is_ip4 else vip.plen
            head = f" {vip.type.label} [{vip.index}] {show_address(vip.prefix)}/{plen}"
            if vip.src_ip_sticky:
                head += " src_ip_sticky"
            if vip.deleted:
                head += " deleted"
            out.append(head)
            if not verbose:
                continue
            out.append(f"  new_size:{vip.new_flows_table_length}")
            out.append(f"  protocol:{vip.protocol} port:{vip.port}")
            out.append("  counters:")
            for name, value in self.lb.vip_counters(vip.index).items():
                out.append(f"    {name}: {value}")
            ases = self.lb.ases_of(vip)
            out.append(f"  #as:{sum(1 for a in ases if a.used)}")
            for a in ases:
                out.append(
                    f"    {show_address(a.address)} used:{int(a.used)} flow:{a.flows} "
                    f"weight:{a.weight} buckets:{a.buckets}"
                )
        return "\n".join(out) + ("\n" if out else "")

    _TRAFFIC = re.compile(r"^(\S+)(?: protocol (tcp|udp))?(?: port (\d+))? flows (\d+) packets (\d+)(?: seed (\d+))?$")

    def _cli_traffic(self, words: list[str]) -> str:
        m = self._TRAFFIC.match(" ".join(words))
        if m is None:
            return "usage: test lb traffic <vip-prefix> [protocol tcp|udp port N] flows N packets M [seed S]\n"
        try:
            net = ipaddress.ip_network(m.group(1), strict=False)
        except ValueError:
            return f"invalid prefix {m.group(1)!r}\n"
        protocol = {"tcp": 6, "udp": 17, None: 255}[m.group(2)]
        port = int(m.group(3) or 0)
        # The CLI parses prefixes correctly on every release (only the API handlers were wrong).
        addr16 = ip46(net.network_address.packed)
        plen = net.prefixlen + (96 if net.version == 4 else 0)
        vip = self.lb.find_vip(addr16, plen, protocol, port)
        if vip is None:
            return f"no such VIP {m.group(1)} protocol {protocol} port {port}\n"
        delivered = self.lb.traffic(vip, int(m.group(4)), int(m.group(5)), int(m.group(6) or 0))
        lines = [f"{addr} {n}" for addr, n in sorted(delivered.items())]
        counters = self.lb.vip_counters(vip.index)
        lines.append(" ".join(f"{k.replace(' ', '-')}={v}" for k, v in counters.items()))
        return "\n".join(lines) + "\n"

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
            out = self._cli_traffic(" ".join(cmd).split())
            self.publish_stats()
        return out


__all__ = ["ERROR_NAMES", "Emulator"]
