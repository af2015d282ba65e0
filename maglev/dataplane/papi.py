"""vpp_papi's socket transport, watched and bounded. VPP thread (and vpp_papi's reader thread).

vpp_papi reads replies on a thread of its own; when VPP goes away, that thread just ends,
and the client only finds out at its next call (up to a keepalive interval later). The
transport here tells at once: when its reader thread ends for any reason but our own
disconnect, ``on_closed`` is called (from that thread) with why. It also refuses a frame
header claiming more than MAX_MESSAGE bytes (vpp_papi would allocate whatever a peer
claims: 4 GB for a hostile or broken one): the connection is then dropped as broken.

And vpp_papi hands every reply from its reader thread through a multiprocessing.Queue (a
pipe and a pickle, about 200 µs a message); both ends are threads of this process, so a
thread queue does the same job.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Any

from vpp_papi.vpp_transport_socket import VppTransport, VppTransportSocketIOError

# No VPP message is near this: the largest, a cli_inband reply of `show lb vips verbose`,
# is about 1.3 kB a VIP of 16 ASes (13 MB for 10,000 VIPs).
MAX_MESSAGE = 64 * 1024 * 1024

Closed = Callable[[str, bool], None]  # why, and whether it was a protocol error
Told = Callable[[int, str, bool], None]  # which connection, why, and whether a protocol error


class WatchedTransport(VppTransport):  # type: ignore[misc]
    def __init__(self, parent: Any, read_timeout: float, server_address: str, on_closed: Closed) -> None:
        super().__init__(parent, read_timeout, server_address)
        self.on_closed = on_closed
        self.closing = False
        self.trouble: tuple[str, bool] | None = None

    def connect(self, *args: Any, **kwargs: Any) -> int:
        rv: int = super().connect(*args, **kwargs)
        self.q = _ThreadQueue()  # nothing is in flight yet
        return rv

    def disconnect(self) -> int:
        self.closing = True
        rv: int = super().disconnect()
        return rv

    def msg_thread_func(self) -> None:
        try:
            super().msg_thread_func()
        finally:
            if not self.closing:
                why, protocol = self.trouble or ("VPP closed the API socket", False)
                self.on_closed(why, protocol)

    def _read(self) -> Any:
        hdr = self._read_fixed(16)
        if not hdr:
            return None
        _, length, _ = self.header.unpack(hdr)
        if length > MAX_MESSAGE:
            self.trouble = (f"VPP sent a frame header claiming {length} bytes (at most {MAX_MESSAGE})", True)
            raise VppTransportSocketIOError(1, self.trouble[0])
        msg = self._read_fixed(length)
        if length == len(msg):
            return msg
        raise VppTransportSocketIOError(1, "VPP closed the API socket in the middle of a message")


class _ThreadQueue(queue.SimpleQueue[Any]):
    """SimpleQueue with the multiprocessing.Queue methods vpp_papi's transport calls."""

    def close(self) -> None:
        return None

    def join_thread(self) -> None:
        return None


def watched_client(api_dir: str, server_address: str, on_closed: Closed, read_timeout: float = 5) -> Any:
    """A VPPApiClient whose transport is the WatchedTransport."""
    from vpp_papi import VPPApiClient

    vpp = VPPApiClient(apidir=api_dir, server_address=server_address, read_timeout=read_timeout)
    vpp.transport = WatchedTransport(vpp, read_timeout, server_address, on_closed)
    return vpp


__all__ = ["MAX_MESSAGE", "Closed", "Told", "WatchedTransport", "watched_client"]
