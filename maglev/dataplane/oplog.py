"""How the dataplane's news is told: a finished sync (one log line per change, refusal
and recreation, and the lbsync counters) and frontend state changes (a log line and a
FrontendTransition). Reactor thread (the VPP thread only returns the SyncResult).

A first full sync of 10,000 ASes is 10,000 log lines, about a second and a half of
formatting and writing: they are written OPS_PER_TURN a reactor turn, so the API and the
probes have their turns in between (the lines of one sync stay in order)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from twisted.internet.interfaces import IReactorTime

from ..bus import EventBus
from ..events import FrontendTransition
from ..log import Logger
from .model import FrontendChange
from .plan import AddAS, AddVip, DelAS, DelVip, Op, SetConf, SetWeight
from .tables import model_mismatches
from .worker import SyncResult

OPS_PER_TURN = 100  # log lines a reactor turn (about 8 ms): the API answers between them
KINDS = {
    AddVip: "vip_added",
    DelVip: "vip_removed",
    AddAS: "as_added",
    DelAS: "as_removed",
    SetWeight: "as_weight_updated",
}

log = Logger(namespace="maglev.dataplane.service.LbSync")


def tell(result: SyncResult, counter: Any, clock: IReactorTime | None = None) -> int:
    """Log and count what ``result`` did; the number of changes (lb conf not counted).
    Counted at once; with a ``clock``, the lines beyond the first OPS_PER_TURN follow in
    the next turns."""
    if counter is not None:
        # By kind first: the first full sync of 100 VIPs of 100 makes 10,000 changes, and a
        # labelled increment each was 15-70 ms of one reactor turn.
        for kind, n in Counter(KINDS.get(type(op)) for op in result.done).items():
            if kind is not None:  # the lb conf is not a change
                counter.labels(result.scope, kind).inc(n)
    log_ops(result.done, clock)
    for frontend, why in result.recreated.items():
        log.info("recreated VIP of {frontend}: {why}", event="lb-sync-recreate", frontend=frontend, why=why)
    for error in result.errors:
        log.error("VPP refused: {error}", event="lb-sync-error", error=error)
    if result.errors and counter is not None:
        counter.labels(result.scope, "error").inc(len(result.errors))
    for key, vip in result.observed.items():
        for address, vpp, model in model_mismatches(vip):
            log.warn(
                "VIP {vip}: VPP gives AS {address} {vpp} buckets, the model of its table {model}: "
                "previews and table digests of this VPP are not exact",
                event="lb-table-model-mismatch", vip=str(key), address=str(address), vpp=vpp, model=model,
            )  # fmt: skip
    return sum(1 for op in result.done if not isinstance(op, SetConf))


def tell_frontends(bus: EventBus, now: float, changes: list[FrontendChange]) -> None:
    """Log (but the first state of each) and publish the frontends' new states."""
    for name, old, new in changes:
        if old is not None:
            log.info("frontend {frontend} {old} -> {new}", event="frontend-transition", frontend=name, old=old, new=new)
        bus.publish(FrontendTransition(now, name, old or new, new))


def tell_unsupported(newly: list[tuple[str, str]]) -> None:
    """Frontends the connected VPP newly cannot hold, with why (once each)."""
    for name, why in newly:
        log.warn(
            "frontend {frontend} is not programmed: unsupported by this VPP: {why}",
            event="lb-vip-unsupported", frontend=name, why=why,
        )  # fmt: skip


def log_ops(ops: Sequence[Op], clock: IReactorTime | None, start: int = 0) -> None:
    end = len(ops) if clock is None else min(len(ops), start + OPS_PER_TURN)
    for op in ops[start:end]:
        log_op(op)
    if end < len(ops) and clock is not None:
        clock.callLater(0, log_ops, ops, clock, end)


def log_op(op: Op) -> None:
    if isinstance(op, SetConf):
        c = op.conf
        log.info(
            "lb conf: ip4-src {ip4} ip6-src {ip6} timeout {timeout}s",
            event="lb-sync-conf", ip4=c.ip4, ip6=c.ip6, timeout=c.timeout,
        )  # fmt: skip
    elif isinstance(op, AddVip):
        d = op.vip
        log.info(
            "add VIP {vip} ({frontend}) encap {encap}",
            event="lb-sync-vip-add", vip=str(d.key), frontend=d.frontend, encap=d.encap.value,
        )  # fmt: skip
    elif isinstance(op, DelVip):
        log.info("remove VIP {vip}", event="lb-sync-vip-remove", vip=str(op.key))
    elif isinstance(op, AddAS):
        log.info(
            "add AS {address} weight {weight} to VIP {vip}",
            event="lb-sync-as-add", address=str(op.address), weight=op.weight, vip=str(op.key),
        )  # fmt: skip
    elif isinstance(op, DelAS):
        log.info(
            "remove AS {address} from VIP {vip} (flush {flush})",
            event="lb-sync-as-remove", address=str(op.address), vip=str(op.key), flush=op.flush,
        )  # fmt: skip
    elif isinstance(op, SetWeight):
        log.info(
            "AS {address} of VIP {vip}: weight {weight} (flush {flush})",
            event="lb-sync-as-weight", address=str(op.address), vip=str(op.key), weight=op.weight, flush=op.flush,
        )  # fmt: skip


__all__ = ["KINDS", "log_op", "tell", "tell_frontends", "tell_unsupported"]
