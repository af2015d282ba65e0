"""The blocking side: VPP calls, only ever made on LbSync's VPP thread.

Knows what this VPP can do (weights or not, fixed lb handlers or not) and encodes
requests accordingly (encode.py); reads VPP's state into ObservedVips by VPP's own keys
(lbcli.py); applies plan operations (pipelined on apisocket.py's connection), raising or
returning VppError with the message, the VIP/AS and the error name for any non-zero
retval; reads the per-VIP stats counters. vpp_papi's own connection is watched
(papi.py): VPP closing it is noticed at once.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Any

from ..vppapi import find_api_dir
from .apisocket import ApiSocket
from .desired import IPAddress, VipKey
from .encode import VIP_TYPE_ENCAP, request_for
from .errors import VppError, VppIOError, VppUnreachable
from .lbcli import parse_vips_verbose
from .papi import Told, watched_client
from .plan import LbConf, ObservedAS, ObservedVip, Op, SetConf
from .routes import RouteCounters

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
    connection: int = 0  # which connection of this maglevd (a late word from an old one is ignored)

    @property
    def api_mode(self) -> str:
        return "weights" if self.weights else "no-weights (drain by removing ASes)"


class VppClient:
    def __init__(
        self,
        api_addr: str,
        stats_addr: str,
        api_dir: str | None,
        api_counter: Any = None,
        on_closed: Told | None = None,
    ) -> None:
        self.api_addr = api_addr
        self.stats_addr = stats_addr
        self.api_dir = api_dir
        self.api_counter = api_counter
        self.traffic = [0, 0]  # messages sent, replies received (the web UI's API pulse); VPP thread writes
        self.on_closed = on_closed or (lambda number, why, protocol: None)
        self.vpp: Any = None
        self.stats: Any = None
        self.routes = RouteCounters()  # the VIPs' FIB entries' counters (routes.py)
        self.changes: ApiSocket | None = None  # a connection of our own for pipelined changes
        self.info: VppInfo | None = None
        self.connections = 0  # numbers each connection: a late word from an old one is told apart
        self.observed: dict[VipKey, ObservedVip] = {}  # VPP-thread-owned cache of VPP's lb state
        self.conf: LbConf | None = None
        self.indexes: dict[VipKey, int] = {}
        self.applied: dict[tuple[VipKey, IPAddress], tuple[int, bool]] = {}  # last (weight, flush) sent

    # --- connection -------------------------------------------------------------------
    def connect(self) -> VppInfo:
        try:
            api_dir = find_api_dir(self.api_dir)
        except FileNotFoundError as e:
            raise VppIOError(str(e)) from None
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:  # cheap: is anything listening? (loading the API definitions is not)
            probe.connect(self.api_addr)
        except OSError as e:
            raise VppUnreachable(f"connect {self.api_addr}: {e.strerror or e}") from None
        finally:
            probe.close()
        self.connections += 1
        number = self.connections
        told = self.on_closed
        vpp = watched_client(str(api_dir), self.api_addr, lambda why, protocol: told(number, why, protocol))
        try:
            vpp.connect("vpp-maglev")
        except Exception as e:
            raise VppIOError(f"connect {self.api_addr}: {e}") from None
        self.vpp = vpp
        try:
            self.changes = ApiSocket(self.api_addr, api_dir)
        except Exception:
            self.changes = None  # one change at a time through vpp_papi then
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
            connection=number,
        )
        self.observed, self.conf, self.indexes, self.applied = {}, None, {}, {}
        return self.info

    def close(self) -> None:
        vpp, self.vpp = self.vpp, None
        stats, self.stats = self.stats, None
        changes, self.changes = self.changes, None
        if changes is not None:
            changes.close()
        for client in (vpp, stats):
            if client is not None:
                try:
                    client.disconnect()
                except Exception:
                    pass  # going away anyway
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
        self.traffic[direction == "recv"] += 1
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

    def read_state(self) -> dict[VipKey, ObservedVip]:
        """VPP's VIPs and their in-use ASes, each by VPP's own key, from ``show lb vips verbose``.

        The CLI is the one place both generations say everything: releases up to 26.06 dump
        protocol 0 (so a UDP VIP and a TCP one on the same address and port cannot be told
        apart), all-port VIPs and the VIP indexes of the stats counters are only there, and
        deleted VIPs are marked as such. Raises CliFormatError when VPP prints what it never
        did (nothing is changed then)."""
        text = self.call("cli_inband", cmd="show lb vips verbose").reply
        observed: dict[VipKey, ObservedVip] = {}
        indexes: dict[VipKey, int] = {}
        for block in parse_vips_verbose(text):
            if block.removed:
                continue  # deleted, listed until VPP collects it (26.06: for ever)
            key = VipKey(block.address, block.protocol, block.port)
            indexes[key] = block.index
            vip = ObservedVip(
                key, VIP_TYPE_ENCAP.get(block.type), block.src_ip_sticky, block.new_size or None,
                dscp=block.dscp, nat=block.nat,
            )  # fmt: skip
            for a in block.ases:
                if a.used:  # removed ASes are listed until VPP collects them
                    vip.ases[a.address] = ObservedAS(a.address, a.weight, True, a.buckets)
            observed[key] = vip
        self.observed, self.indexes = observed, indexes
        self.routes.forget()  # a VIP recreated may have a new FIB entry
        return observed

    def counters(self, keys: list[VipKey]) -> dict[VipKey, dict[str, int]]:
        if self.stats is None:
            return {}
        if any(k not in self.indexes for k in self.observed):
            # A VIP created since the last read: its index (its column) is only in the CLI.
            # Keys VPP does not hold (an unsupported kind, say) need no read.
            self.read_state()
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
        can_lookup = self.vpp is not None and hasattr(self.vpp.api, "ip_route_lookup")
        for key, (packets, octets) in self.routes.read(self.call, can_lookup, self.stats, list(out)).items():
            out[key]["route-packets"], out[key]["route-bytes"] = packets, octets
        return out

    # --- writing ----------------------------------------------------------------------
    def apply(self, op: Op) -> None:
        name, what, kwargs = request_for(op, self.weights, self.fixed)
        reply = self.call(name, **kwargs)
        self._check(name, what, reply)
        if isinstance(op, SetConf):
            c = op.conf
            if self.conf is not None and c.buckets == 0xFFFFFFFF:
                c = LbConf(c.ip4, c.ip6, self.conf.buckets, c.timeout)
            self.conf = c

    def apply_many(self, ops: list[Op]) -> list[VppError | None]:
        """Every change, pipelined on our own connection (apisocket.py), else one at a time."""
        if self.changes is None or not ops:
            out: list[VppError | None] = []
            for op in ops:
                try:
                    self.apply(op)
                    out.append(None)
                except VppError as e:
                    out.append(e)
            return out
        requests = [request_for(op, self.weights, self.fixed) for op in ops]
        for name, _, _ in requests:
            self._count(name, "send", "success")
        results: list[VppError | None] = []
        for (name, what, _), retval in zip(requests, self.changes.pipeline(requests), strict=True):
            self._count(name, "recv", "failure" if retval else "success")
            results.append(None if retval == 0 else VppError(name, what, retval))
        return results

    @staticmethod
    def _check(message: str, what: str, reply: Any) -> None:
        if reply.retval != 0:
            raise VppError(message, what, int(reply.retval))


__all__ = ["VppClient", "VppError", "VppIOError", "VppInfo"]
