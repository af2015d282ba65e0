"""A sync's news: every change counted at once, its log lines OPS_PER_TURN a reactor turn, in order."""

from __future__ import annotations

import ipaddress
from typing import Any, cast

from prometheus_client import CollectorRegistry, Counter
from twisted.internet.task import Clock
from twisted.logger import ILogObserver, globalLogPublisher

from maglev.dataplane.desired import VipKey
from maglev.dataplane.oplog import OPS_PER_TURN, tell
from maglev.dataplane.plan import AddAS, DelAS, LbConf, Op, SetConf, SetWeight
from maglev.dataplane.worker import SyncResult


def test_a_big_sync_is_counted_at_once_and_logged_a_turn_at_a_time() -> None:
    key = VipKey(ipaddress.ip_address("198.19.0.1"), 6, 80)
    ops: list[Op] = [
        AddAS(key, ipaddress.ip_address(f"10.0.{i // 250}.{i % 250 + 1}"), 100, False, "f") for i in range(1200)
    ]
    ops += [SetWeight(key, ipaddress.ip_address(f"10.1.0.{i + 1}"), 0, False, "f") for i in range(7)]
    ops += [DelAS(key, ipaddress.ip_address("10.2.0.1"), True, "f"), SetConf(LbConf("192.0.2.254", "", 1024, 40))]
    counter = Counter("lbsync", "changes", ["scope", "kind"], registry=CollectorRegistry())
    seen: list[str] = []

    def observer(event: dict[str, Any]) -> None:
        if event.get("event") == "lb-sync-as-add":
            seen.append(str(event["address"]))

    clock = Clock()
    watching = cast(ILogObserver, observer)
    globalLogPublisher.addObserver(watching)
    try:
        assert tell(SyncResult("full", ("f",), done=list(ops)), counter, clock) == 1208  # but the lb conf
        counted = {k: counter.labels("full", k)._value.get() for k in ("as_added", "as_weight_updated", "as_removed")}
        assert counted == {"as_added": 1200, "as_weight_updated": 7, "as_removed": 1}  # counted at once, by kind
        assert counter.labels("full", "vip_added")._value.get() == 0
        assert len(seen) == OPS_PER_TURN
        clock.advance(0)
        assert seen == [str(op.address) for op in ops if isinstance(op, AddAS)]  # the rest later, in order
        assert not clock.getDelayedCalls()
    finally:
        globalLogPublisher.removeObserver(watching)
