"""What a VPP call can fail with: VPP's refusal (a retval), a broken connection, or no
connection at all. Pure."""

from __future__ import annotations

from ..vppapi import RETVAL_NAMES


class VppError(Exception):
    def __init__(self, message: str, what: str, retval: int) -> None:
        self.message, self.what, self.retval = message, what, retval
        self.name = RETVAL_NAMES.get(retval, str(retval))
        super().__init__(f"{message} {what}: {self.name} ({retval})")


class VppIOError(Exception):
    """The connection is gone or broken: LbSync reconnects."""


class VppUnreachable(VppIOError):
    """Nothing listens on the API socket (VPP is not running, or restarting): try again soon."""


class VppProtocolError(VppIOError):
    """VPP (or whatever is on its socket) sent what VPP never sends: the connection is dropped."""


class NotConnected(Exception):
    """VPP integration is disabled or VPP is not connected (maps to UNAVAILABLE)."""


__all__ = ["NotConnected", "VppError", "VppIOError", "VppProtocolError", "VppUnreachable"]
