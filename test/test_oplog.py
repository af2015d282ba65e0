"""A sync's news: every change counted at once, its log lines OPS_PER_TURN a reactor turn, in order."""

from __future__ import annotations

import ipaddress
from typing import Any, cast

from prometheus_client import CollectorRegistry, Counter
from twisted.internet.task import Clock
from twisted.logger import ILogObserver, globalLogPublisher

from maglev.dataplane.desired import VipKey
from maglev.dataplane.oplog import OPS_PER_TURN, tell
from maglev.dataplane.plan import AddAS
from maglev.dataplane.worker import SyncResult


def test_a_big_sync_is_counted_at_once_and_logged_a_turn_at_a_time() -> None:
    key = VipKey(ipaddress.ip_address("198.19.0.1"), 6, 80)
    ops = [AddAS(key, ipaddress.ip_address(f"10.0.{i // 250}.{i % 250 + 1}"), 100, False, "f") for i in range(1200)]
    counter = Counter("lbsync", "changes", ["scope", "kind"], registry=CollectorRegistry())
    seen: list[str] = []

    def observer(event: dict[str, Any]) -> None:
        if event.get("event") == "lb-sync-as-add":
            seen.append(str(event["address"]))

    clock = Clock()
    watching = cast(ILogObserver, observer)
    globalLogPublisher.addObserver(watching)
    try:
        assert tell(SyncResult("full", ("f",), done=list(ops)), counter, clock) == 1200
        assert counter.labels("full", "as_added")._value.get() == 1200  # counted at once
        assert len(seen) == OPS_PER_TURN
        clock.advance(0)
        assert seen == [str(op.address) for op in ops]  # the rest in the next turns, in order
        assert not clock.getDelayedCalls()
    finally:
        globalLogPublisher.removeObserver(watching)
