"""Pipelined changes on a second vpp_papi connection in async mode. VPP thread.

Every change of a batch is sent without waiting, then the replies are collected (VPP
answers in order, on the connection's reader thread): a full sync of 16,000 ASes is then
bound by VPP's speed, not by one round trip per change.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Any

from .errors import VppError, VppIOError

Request = tuple[str, str, dict[str, Any]]  # message, what (for errors), arguments
VALUE_EXIST = -81


class BulkChanges:
    def __init__(self, vpp: Any, count: Callable[[str, str, str], None], timeout: float = 10.0) -> None:
        self.vpp = vpp
        self.count = count
        self.timeout = timeout
        self._replies: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        vpp.register_event_callback(self._reply)
        vpp.connect("vpp-maglev-bulk", do_async=True)

    def _reply(self, name: str, reply: Any) -> None:
        self._replies.put((name, reply))  # on vpp_papi's reader thread

    def close(self) -> None:
        try:
            self.vpp.disconnect()
        except Exception:
            pass  # going away anyway

    def send(self, requests: list[Request], weights: bool) -> list[VppError | None]:
        """Each request's error (None: done). Raises VppIOError when the connection fails."""
        pending: dict[int, tuple[int, str, str]] = {}
        for i, (name, what, kwargs) in enumerate(requests):
            fn = getattr(self.vpp.api, name, None)
            if fn is None:
                raise VppIOError(f"this VPP has no {name}")
            try:
                context = fn(**kwargs)
            except Exception as e:
                raise VppIOError(f"{name}: {e}") from None
            self.count(name, "send", "success")
            pending[int(context)] = (i, name, what)
        results: list[VppError | None] = [None] * len(requests)
        while pending:
            try:
                _, reply = self._replies.get(timeout=self.timeout)
            except queue.Empty:
                raise VppIOError(f"no reply for {len(pending)} changes") from None
            entry = pending.pop(int(getattr(reply, "context", -1)), None)
            if entry is None:
                continue  # not ours (a late reply of a failed batch)
            i, name, what = entry
            retval = int(getattr(reply, "retval", 0))
            self.count(name, "recv", "failure" if retval else "success")
            # 26.06 lists deleted VIPs: re-adding one we took for absent answers VALUE_EXIST; fine
            if retval and not (retval == VALUE_EXIST and name == "lb_add_del_vip_v2" and not weights):
                results[i] = VppError(name, what, retval)
        return results


__all__ = ["BulkChanges"]
