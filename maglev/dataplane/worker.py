"""VppWorker: the only code that touches vpp_papi. Runs on the VPP thread alone.

LbSync hands it immutable jobs (a SyncJob, a read) through the VPP thread and gets plain
values back: results, and copies of what it read, never its own mutable cache of VPP
(``VppClient.observed``), which only this thread sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .desired import VipKey
from .lbcli import CliFormatError
from .model import SyncJob
from .papi import Told
from .plan import AddAS, LbConf, ObservedVip, Op, SetWeight, apply_to_model, conf_op, plan
from .vppclient import VppClient, VppError, VppInfo, VppIOError

BATCH = 512  # changes sent before their replies are collected

Observed = dict[VipKey, ObservedVip]


@dataclass
class SyncResult:
    scope: str
    frontends: tuple[str, ...]
    done: list[Op] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    recreated: dict[str, str] = field(default_factory=dict)
    io_error: str | None = None
    observed: Observed = field(default_factory=dict)  # a copy, after the sync, of its VIPs
    observed_all: bool = False  # ``observed`` is all of VPP (a full read), not just these VIPs


class VppWorker:
    def __init__(self, client: VppClient) -> None:
        self.client = client

    def connect(self) -> VppInfo:
        return self.client.connect()

    def close(self) -> None:
        self.client.close()

    def ping(self) -> None:
        self.client.ping()

    def traffic(self) -> tuple[int, int]:
        """Binary-API messages sent and replies received so far (any thread: two ints)."""
        return self.client.traffic[0], self.client.traffic[1]

    def sync(self, job: SyncJob) -> SyncResult:
        """Read (full syncs), plan, apply; never raises for VPP's answers."""
        client = self.client
        result = SyncResult(job.scope, tuple(d.frontend for d in job.desired))
        try:
            reread = job.reread or not client.observed
            if reread:
                client.read_state()
                set_conf = conf_op(job.conf, client.read_conf())
                if set_conf is not None:
                    self._apply_one(set_conf, result)
            ops, result.recreated = plan(
                list(job.desired), client.observed, client.weights, client.applied, job.full, job.flush
            )
            for start in range(0, len(ops), BATCH):
                batch = ops[start : start + BATCH]
                for op, error in zip(batch, client.apply_many(batch), strict=True):
                    if error is not None:
                        result.errors.append(str(error))
                    else:
                        self._record(op, result)
        except VppIOError as e:
            result.io_error = str(e)
            return result
        except CliFormatError as e:
            result.errors.append(f"cannot read VPP's lb state, nothing changed: {e}")
            return result
        seen = client.observed
        keys = seen if reread else [d.key for d in job.desired if d.key in seen]
        weights = client.weights
        result.observed, result.observed_all = {k: snapshot(seen[k], weights, reread) for k in keys}, reread
        return result

    def _apply_one(self, op: Op, result: SyncResult) -> None:
        try:
            self.client.apply(op)
        except VppError as e:
            result.errors.append(str(e))
            return
        self._record(op, result)

    def _record(self, op: Op, result: SyncResult) -> None:
        client = self.client
        apply_to_model(client.observed, op, client.weights)
        if isinstance(op, (AddAS, SetWeight)):
            client.applied[(op.key, op.address)] = (op.weight, op.flush)
        result.done.append(op)

    def read(self) -> tuple[LbConf | None, Observed]:
        """VPP's lb state now: a private copy."""
        observed = self.client.read_state()
        weights = self.client.weights
        return self.client.read_conf(), {k: snapshot(v, weights, True) for k, v in observed.items()}

    def counters(self, keys: list[VipKey]) -> dict[VipKey, dict[str, int]]:
        try:
            return self.client.counters(keys)
        except CliFormatError:
            return {}  # the next sync says what VPP printed


def snapshot(vip: ObservedVip, weights: bool, eager: bool = False) -> ObservedVip:
    """A copy that later changes to the cache do not reach (its ASes are immutable values).
    Its new-flow table is worked out when first asked (a VIP sync is not held up for it);
    ``eager``: here, off the reactor (full reads: every VIP at once; unchanged inputs cost
    nothing, tables are cached by them)."""
    copy = ObservedVip(
        vip.key, vip.encap, vip.src_ip_sticky, vip.table_length, dict(vip.ases), vip.dscp, vip.nat, weights
    )  # fmt: skip
    if eager:
        copy.new_flow_table()
    return copy


def make_worker(
    api_addr: str, stats_addr: str, api_dir: str | None, api_counter: Any = None, on_closed: Told | None = None
) -> VppWorker:
    return VppWorker(VppClient(api_addr, stats_addr, api_dir, api_counter, on_closed))


__all__ = ["BATCH", "SyncJob", "SyncResult", "VppWorker", "make_worker"]
