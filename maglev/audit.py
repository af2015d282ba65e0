"""The audit trail: every change asked of maglevd (gRPC or web admin), who asked,
from where, and what came of it; one ``audit`` log event and one count each.

Refusals are audited too: a stream of ``permission_denied`` is what an operator
wants to see when someone probes the API.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter

from .log import Logger


class Audit:
    log = Logger(namespace="maglev.audit")

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._counter = (
            Counter(
                "maglev_audit",
                "Changes asked of maglevd (gRPC and web admin), by action and result",
                ["action", "result"],
                registry=registry,
            )
            if registry is not None
            else None
        )

    def record(
        self,
        who: str,
        action: str,
        address: str,
        result: str,
        request: dict[str, Any] | None = None,
        on_behalf_of: str = "",
        detail: str = "",
    ) -> None:
        """``result``: "ok", "failed" (the change was refused by its own checks or VPP), or a
        gRPC status in lower case ("permission_denied", "not_found", ...)."""
        emit = self.log.info if result == "ok" else self.log.warn
        emit(
            "audit: {who} {action} from {address}: {result}",
            event="audit",
            who=who,
            action=action,
            address=address,
            result=result,
            request=request or {},
            on_behalf_of=on_behalf_of,
            detail=detail,
        )
        if self._counter is not None:
            self._counter.labels(action, result).inc()
