"""The blocking side: vpp_papi calls, only ever made on LbSync's VPP thread.

Knows what this VPP can do (weights or not, fixed lb handlers or not) and
encodes requests accordingly; reads VPP's state into ObservedVips; applies
plan operations, raising VppError with the message, the VIP/AS and the error
name for any non-zero retval; reads the per-VIP stats counters.
"""

from __future__ import annotations

import ipaddress
import queue
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Encap
from ..vppapi import RETVAL_NAMES, find_api_dir
from .desired import IPAddress, VipKey
from .dumps import DumpError, DumpReader
from .plan import AddAS, AddVip, DelAS, DelVip, LbConf, ObservedAS, ObservedVip, Op, SetConf

ENCAP_API = {Encap.GRE4: 0, Encap.GRE6: 1, Encap.L3DSR: 2, Encap.NAT4: 3, Encap.NAT6: 4}
API_ENCAP = {v: k for k, v in ENCAP_API.items()}
# releases up to 26.06 report the internal lb_vip_type
INTERNAL_ENCAP = {
    0: Encap.GRE6,
    1: Encap.GRE4,
    2: Encap.GRE6,
    3: Encap.GRE4,
    4: Encap.L3DSR,
    5: Encap.NAT4,
    6: Encap.NAT6,
}
COUNTERS = {
    "next": "packet from existing sessions",
    "first": "first session packet",
    "untracked": "untracked packet",
    "no-server": "no server configured",
}
_VIP_LINE = re.compile(r"^\s*\S+ \[(\d+)\] (\S+)/(\d+)(.*)$")
_NEW_SIZE = re.compile(r"new_size:(\d+)")
_PROTO_PORT = re.compile(r"protocol:(\d+) port:(\d+)")


class VppError(Exception):
    def __init__(self, message: str, what: str, retval: int) -> None:
        self.message, self.what, self.retval = message, what, retval
        self.name = RETVAL_NAMES.get(retval, str(retval))
        super().__init__(f"{message} {what}: {self.name} ({retval})")


class VppIOError(Exception):
    """The connection is gone or broken: LbSync reconnects."""


@dataclass(frozen=True)
class VppInfo:
    version: str
    build_date: str
    build_directory: str
    pid: int
    boottime: float  # unix seconds, from /sys/boottime
    connected_at: float  # unix seconds
    weights: bool  # lb_as_set_weight and lb_add_del_as_v2 exist (VPP master)
    fixed_handlers: bool  # lb_conf_get exists: IPv4 prefix lengths are sent as they are

    @property
    def api_mode(self) -> str:
        return "weights" if self.weights else "no-weights (drain by removing ASes)"


def _thread_queue(vpp: Any) -> None:
    """Hand replies from vpp_papi's reader thread to us through a thread queue.

    vpp_papi's socket transport passes every received message through a
    multiprocessing.Queue (a pipe plus pickling, about 200 µs a message), which
    made a dump of 16,000 ASes take seconds. Both ends are threads of this
    process, so a queue.SimpleQueue does the same job. Done right after
    connect, before anything is in flight; left alone if vpp_papi changes.
    """
    transport: Any = getattr(vpp, "transport", None)
    q = getattr(transport, "q", None)
    if transport is not None and q is not None and type(q).__module__.startswith("multiprocessing"):
        transport.q = _TimeoutQueue()


class _TimeoutQueue(queue.SimpleQueue[Any]):
    """SimpleQueue with the mp.Queue methods vpp_papi's transport calls."""

    def close(self) -> None:
        return None

    def join_thread(self) -> None:
        return None


class VppClient:
    def __init__(self, api_addr: str, stats_addr: str, api_dir: str | None, api_counter: Any = None) -> None:
        self.api_addr = api_addr
        self.stats_addr = stats_addr
        self.api_dir = api_dir
        self.api_counter = api_counter
        self.vpp: Any = None
        self.stats: Any = None
        self.dumps: DumpReader | None = None
        self.dump_error = ""
        self.bulk: Any = None  # a second vpp_papi connection in async mode, for pipelined changes
        self._replies: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self.info: VppInfo | None = None
        self.observed: dict[VipKey, ObservedVip] = {}  # VPP-thread-owned cache of VPP's lb state
        self.conf: LbConf | None = None
        self.indexes: dict[VipKey, int] = {}
        self.applied: dict[tuple[VipKey, IPAddress], tuple[int, bool]] = {}  # last (weight, flush) sent
        self.calls: list[tuple[str, dict[str, Any], int]] = []  # mutations sent, for the sync's log

    # --- connection -------------------------------------------------------------------
    def connect(self) -> VppInfo:
        from vpp_papi import VPPApiClient

        try:
            api_dir = str(find_api_dir(self.api_dir))
        except FileNotFoundError as e:
            raise VppIOError(str(e)) from None
        vpp = VPPApiClient(apidir=api_dir, server_address=self.api_addr, read_timeout=5)
        try:
            vpp.connect("vpp-maglev")
        except Exception as e:
            raise VppIOError(f"connect {self.api_addr}: {e}") from None
        _thread_queue(vpp)
        self.vpp = vpp
        try:
            self.dumps = DumpReader(self.api_addr, Path(api_dir))
        except Exception as e:
            self.dumps = None  # vpp_papi's dumps still work, only slower
            self.dump_error = str(e)
        try:
            bulk = VPPApiClient(apidir=api_dir, server_address=self.api_addr, read_timeout=5)
            bulk.register_event_callback(self._bulk_reply)
            bulk.connect("vpp-maglev-bulk", do_async=True)
            self.bulk = bulk
        except Exception:
            self.bulk = None  # one request at a time then
        try:
            version = self.call("show_version")
            ping = self.call("control_ping")
            boottime = 0.0
            if self.stats_addr:
                from vpp_papi.vpp_stats import VPPStats

                self.stats = VPPStats(self.stats_addr, timeout=5)
                self.stats.connect()
                boottime = float(self.stats["/sys/boottime"])
        except Exception as e:
            self.close()
            raise VppIOError(f"connect {self.api_addr}: {e}") from None
        self.info = VppInfo(
            version=str(version.version),
            build_date=str(version.build_date),
            build_directory=str(version.build_directory),
            pid=int(ping.vpe_pid),
            boottime=boottime,
            connected_at=time.time(),
            weights=hasattr(vpp.api, "lb_as_set_weight") and hasattr(vpp.api, "lb_add_del_as_v2"),
            fixed_handlers=hasattr(vpp.api, "lb_conf_get"),
        )
        self.observed, self.conf, self.indexes, self.applied = {}, None, {}, {}
        return self.info

    def close(self) -> None:
        vpp, self.vpp = self.vpp, None
        stats, self.stats = self.stats, None
        dumps, self.dumps = self.dumps, None
        if dumps is not None:
            dumps.close()
        bulk, self.bulk = self.bulk, None
        if bulk is not None:
            try:
                bulk.disconnect()
            except Exception:
                pass
        if vpp is not None:
            try:
                vpp.disconnect()
            except Exception:
                pass
        if stats is not None:
            try:
                stats.disconnect()
            except Exception:
                pass
        self.observed, self.conf, self.indexes = {}, None, {}

    def ping(self) -> None:
        self.call("control_ping")

    def call(self, name: str, **kwargs: Any) -> Any:
        if self.vpp is None:
            raise VppIOError("not connected")
        fn = getattr(self.vpp.api, name, None)
        if fn is None:
            raise VppIOError(f"this VPP has no {name}")
        try:
            reply = fn(**kwargs)
        except Exception as e:
            self._count(name, "send", "failure")
            raise VppIOError(f"{name}: {e}") from None
        self._count(name, "send", "success")
        replies = reply if isinstance(reply, list) else [reply]
        failed = any(getattr(r, "retval", 0) != 0 for r in replies)
        self._count(name, "recv", "failure" if failed else "success")
        return reply

    def _count(self, name: str, direction: str, result: str) -> None:
        if self.api_counter is not None:
            self.api_counter.labels(name, direction, result).inc()

    # --- encodings --------------------------------------------------------------------
    @property
    def weights(self) -> bool:
        return self.info is not None and self.info.weights

    def pfx(self, key: VipKey) -> dict[str, Any]:
        length = key.address.max_prefixlen
        if key.address.version == 4 and self.info is not None and not self.info.fixed_handlers:
            length = 128  # releases up to 26.06 take the internal ip46 length (96 + 32)
        return {"address": str(key.address), "len": length}

    def vip_args(self, key: VipKey) -> dict[str, Any]:
        return {"pfx": self.pfx(key), "protocol": key.protocol, "port": key.port}

    # --- reading ----------------------------------------------------------------------
    def read_conf(self) -> LbConf | None:
        if self.info is None or not self.info.fixed_handlers:
            return self.conf  # no lb_conf_get: what we sent since connecting
        r = self.call("lb_conf_get")
        return LbConf(
            str(r.ip4_src_address), str(r.ip6_src_address), int(r.sticky_buckets_per_core), int(r.flow_timeout)
        )

    def read_state(self, protocols: dict[tuple[IPAddress, int], int]) -> dict[VipKey, ObservedVip]:
        """VPP's VIPs and their ASes. ``protocols`` resolves VIPs whose dump carries protocol 0 (26.06)."""
        fixed = self.info is not None and self.info.fixed_handlers
        vips = self._dump("lb_vip_dump")
        verbose = self._parse_verbose(self.call("cli_inband", cmd="show lb vips verbose").reply)
        observed: dict[VipKey, ObservedVip] = {}
        for d in vips:
            address, _ = self._address_len(d.vip.pfx, fixed)
            protocol, port = int(d.vip.protocol), int(d.vip.port)
            if not fixed:
                protocol = 255 if port == 0 else protocols.get((address, port), 6)
            key = VipKey(address, protocol, port)
            encap = API_ENCAP.get(int(d.encap)) if fixed else INTERNAL_ENCAP.get(int(d.encap))
            extra = verbose.get((address, protocol if fixed else None, port)) or verbose.get((address, None, port))
            sticky = extra[1] if extra else None
            size = extra[2] if extra else (int(d.flow_table_length) or None)
            if extra:
                self.indexes[key] = extra[0]
            observed[key] = ObservedVip(key, encap, sticky, size)
        dump = "lb_as_v2_dump" if self.weights else "lb_as_dump"
        for a in self._dump(dump):
            address, _ = self._address_len(a.vip.pfx, fixed)
            port = int(a.vip.port)
            protocol = int(a.vip.protocol) if fixed else (255 if port == 0 else protocols.get((address, port), 6))
            vip = observed.get(VipKey(address, protocol, port))
            if vip is None or not int(a.flags) & 1:
                continue  # removed ASes linger, flags 0, until VPP collects them
            as_addr = self._plain_address(a.app_srv)
            weight = int(a.weight) if self.weights else None
            vip.ases[as_addr] = ObservedAS(as_addr, weight, True, int(a.num_buckets) if self.weights else None)
        if not fixed:
            # 26.06 lists deleted VIPs for ever: one without ASes is treated as absent (re-adding
            # a live one answers VALUE_EXIST, which counts as success there).
            observed = {k: v for k, v in observed.items() if v.ases}
        self.observed = observed
        return observed

    def _dump(self, name: str) -> list[Any]:
        """A whole dump, raw (no type conversion); through the fast reader when it is there."""
        if self.dumps is not None and self.dumps.has(name):
            try:
                rows = self.dumps.dump(name)
            except (OSError, DumpError) as e:
                raise VppIOError(f"{name}: {e}") from None
            self._count(name, "send", "success")
            self._count(name, "recv", "success")
            return rows
        rows_any: list[Any] = self.call(name, _no_type_conversion=True)
        return rows_any

    @staticmethod
    def _plain_address(raw: Any) -> IPAddress:
        if int(raw.af) == 1:
            return ipaddress.IPv6Address(bytes(raw.un.ip6))
        return ipaddress.IPv4Address(bytes(raw.un.ip4)[:4])

    def _address_len(self, pfx: Any, fixed: bool) -> tuple[IPAddress, int]:
        address = self._plain_address(pfx.address)
        length = int(pfx.len)
        if address.version == 4 and not fixed and length >= 96:
            length -= 96
        return address, length

    @staticmethod
    def _parse_verbose(text: str) -> dict[tuple[IPAddress, int | None, int], tuple[int, bool, int | None]]:
        """``show lb vips verbose``: (address, protocol, port) -> (VIP index, src_ip_sticky, new_size)."""
        out: dict[tuple[IPAddress, int | None, int], tuple[int, bool, int | None]] = {}
        current: list[Any] | None = None
        for line in text.splitlines():
            m = _VIP_LINE.match(line)
            if m:
                current = [int(m.group(1)), ipaddress.ip_address(m.group(2)), "src_ip_sticky" in m.group(4), None]
                continue
            if current is None:
                continue
            size = _NEW_SIZE.search(line)
            if size:
                current[3] = int(size.group(1))
            pp = _PROTO_PORT.search(line)
            if pp:
                protocol, port = int(pp.group(1)), int(pp.group(2))
                value = (current[0], current[2], current[3])
                out[(current[1], protocol, port)] = value
                out.setdefault((current[1], None, port), value)
        return out

    def counters(self, keys: list[VipKey]) -> dict[VipKey, dict[str, int]]:
        if self.stats is None:
            return {}
        if any(k not in self.indexes for k in keys):
            self.read_state({(k.address, k.port): k.protocol for k in keys})
        out: dict[VipKey, dict[str, int]] = {}
        try:
            tables = {kind: self.stats[name] for kind, name in COUNTERS.items()}
        except KeyError:
            return {k: dict.fromkeys(COUNTERS, 0) for k in keys}  # no VIP yet: the counters do not exist
        for key in keys:
            index = self.indexes.get(key)
            if index is None:
                continue
            out[key] = {kind: sum(row[index] for row in t if index < len(row)) for kind, t in tables.items()}
        return out

    # --- writing ----------------------------------------------------------------------
    def apply(self, op: Op) -> None:
        name, what, kwargs = self._request(op)
        reply = self.call(name, **kwargs)
        if reply.retval == -81 and name == "lb_add_del_vip_v2" and not self.weights:
            return  # 26.06 lists deleted VIPs: one we took for absent may be live; fine
        self._check(name, what, reply)
        if isinstance(op, SetConf):
            c = op.conf
            if self.conf is not None and c.buckets == 0xFFFFFFFF:
                c = LbConf(c.ip4, c.ip6, self.conf.buckets, c.timeout)
            self.conf = c

    # --- pipelined changes --------------------------------------------------------------
    def _bulk_reply(self, name: str, reply: Any) -> None:
        self._replies.put((name, reply))  # on vpp_papi's reader thread

    def apply_many(self, ops: list[Op]) -> list[VppError | None]:
        """Send every change without waiting, then collect the replies (VPP answers in order).

        A full sync of 16,000 ASes is then bound by VPP's speed, not by one round trip per
        change. Falls back to one call at a time when the async connection is missing.
        """
        if self.bulk is None or not ops:
            out: list[VppError | None] = []
            for op in ops:
                try:
                    self.apply(op)
                    out.append(None)
                except VppError as e:
                    out.append(e)
            return out
        pending: dict[int, tuple[int, str, str]] = {}
        for i, op in enumerate(ops):
            name, what, kwargs = self._request(op)
            fn = getattr(self.bulk.api, name, None)
            if fn is None:
                raise VppIOError(f"this VPP has no {name}")
            try:
                context = fn(**kwargs)
            except Exception as e:
                raise VppIOError(f"{name}: {e}") from None
            self._count(name, "send", "success")
            pending[int(context)] = (i, name, what)
        results: list[VppError | None] = [None] * len(ops)
        while pending:
            try:
                _, reply = self._replies.get(timeout=10)
            except queue.Empty:
                raise VppIOError(f"no reply for {len(pending)} changes") from None
            entry = pending.pop(int(getattr(reply, "context", -1)), None)
            if entry is None:
                continue  # not ours (a late reply of a failed batch)
            i, name, what = entry
            retval = int(getattr(reply, "retval", 0))
            self._count(name, "recv", "failure" if retval else "success")
            if retval and not (retval == -81 and name == "lb_add_del_vip_v2" and not self.weights):
                results[i] = VppError(name, what, retval)
        return results

    def _request(self, op: Op) -> tuple[str, str, dict[str, Any]]:
        """The message, a description and the arguments for one change."""
        if isinstance(op, SetConf):
            c = op.conf
            args = {"ip4_src_address": c.ip4, "ip6_src_address": c.ip6, "sticky_buckets_per_core": c.buckets}
            return "lb_conf", f"ip4-src {c.ip4} ip6-src {c.ip6}", {**args, "flow_timeout": c.timeout}
        if isinstance(op, AddVip):
            d = op.vip
            args = {
                "encap": ENCAP_API[d.encap],
                "new_flows_table_length": d.table_length,
                "src_ip_sticky": d.src_ip_sticky,
            }
            return "lb_add_del_vip_v2", f"VIP {d.key} ({d.frontend})", {**self.vip_args(d.key), **args}
        if isinstance(op, DelVip):
            return "lb_add_del_vip_v2", f"VIP {op.key} (delete)", {**self.vip_args(op.key), "is_del": True}
        what = f"AS {op.address} of VIP {op.key}"
        base = {**self.vip_args(op.key), "as_address": str(op.address)}
        if isinstance(op, AddAS):
            if self.weights:
                return "lb_add_del_as_v2", what, {**base, "weight": op.weight, "is_flush": op.flush}
            return "lb_add_del_as", what, base
        if isinstance(op, DelAS):
            name = "lb_add_del_as_v2" if self.weights else "lb_add_del_as"
            return name, f"{what} (delete)", {**base, "is_del": True, "is_flush": op.flush}
        return "lb_as_set_weight", what, {**base, "weight": op.weight, "is_flush": op.flush}

    @staticmethod
    def _check(message: str, what: str, reply: Any) -> None:
        if reply.retval != 0:
            raise VppError(message, what, int(reply.retval))
