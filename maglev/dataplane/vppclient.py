"""The blocking side: vpp_papi calls, only ever made on LbSync's VPP thread.

Knows what this VPP can do (weights or not, fixed lb handlers or not) and
encodes requests accordingly; reads VPP's state into ObservedVips; applies
plan operations, raising VppError with the message, the VIP/AS and the error
name for any non-zero retval; reads the per-VIP stats counters.
"""

from __future__ import annotations

import queue
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..vppapi import find_api_dir
from .bulk import BulkChanges
from .desired import IPAddress, VipKey
from .dumps import DumpError, DumpReader
from .encode import API_ENCAP, INTERNAL_ENCAP, plain_address, prefix_of, request_for
from .errors import VppError, VppIOError
from .lbcli import parse_vips_verbose
from .plan import LbConf, ObservedAS, ObservedVip, Op, SetConf

COUNTERS = {
    "next": "packet from existing sessions",
    "first": "first session packet",
    "untracked": "untracked packet",
    "no-server": "no server configured",
}


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
        self.bulk: BulkChanges | None = None  # a second connection, async, for pipelined changes
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
            self.bulk = BulkChanges(
                VPPApiClient(apidir=api_dir, server_address=self.api_addr, read_timeout=5), self._count
            )
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
            bulk.close()
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

    # --- what this VPP can do --------------------------------------------------------------------
    @property
    def weights(self) -> bool:
        return self.info is not None and self.info.weights

    @property
    def fixed(self) -> bool:
        """lb_conf_get exists: IPv4 prefix lengths are sent as they are."""
        return self.info is not None and self.info.fixed_handlers

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
        verbose = parse_vips_verbose(self.call("cli_inband", cmd="show lb vips verbose").reply)
        observed: dict[VipKey, ObservedVip] = {}
        for d in vips:
            address, _ = prefix_of(d.vip.pfx, fixed)
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
            address, _ = prefix_of(a.vip.pfx, fixed)
            port = int(a.vip.port)
            protocol = int(a.vip.protocol) if fixed else (255 if port == 0 else protocols.get((address, port), 6))
            vip = observed.get(VipKey(address, protocol, port))
            if vip is None or not int(a.flags) & 1:
                continue  # removed ASes linger, flags 0, until VPP collects them
            as_addr = plain_address(a.app_srv)
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
        name, what, kwargs = request_for(op, self.weights, self.fixed)
        reply = self.call(name, **kwargs)
        if reply.retval == -81 and name == "lb_add_del_vip_v2" and not self.weights:
            return  # 26.06 lists deleted VIPs: one we took for absent may be live; fine
        self._check(name, what, reply)
        if isinstance(op, SetConf):
            c = op.conf
            if self.conf is not None and c.buckets == 0xFFFFFFFF:
                c = LbConf(c.ip4, c.ip6, self.conf.buckets, c.timeout)
            self.conf = c

    def apply_many(self, ops: list[Op]) -> list[VppError | None]:
        """Every change, pipelined when the async connection is there (bulk.py), else one at a time."""
        if self.bulk is not None and ops:
            requests = [request_for(op, self.weights, self.fixed) for op in ops]
            return self.bulk.send(requests, self.weights)
        out: list[VppError | None] = []
        for op in ops:
            try:
                self.apply(op)
                out.append(None)
            except VppError as e:
                out.append(e)
        return out

    @staticmethod
    def _check(message: str, what: str, reply: Any) -> None:
        if reply.retval != 0:
            raise VppError(message, what, int(reply.retval))


__all__ = ["VppClient", "VppError", "VppIOError", "VppInfo"]
