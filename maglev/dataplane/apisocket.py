"""Pipelined changes on a connection of our own, replies read on the VPP thread itself.

A full sync sends thousands of changes, a backend transition a few; through vpp_papi each
reply would cross from its reader thread to ours (a thread hand-over per reply, which is
where the latency tail came from). This connection speaks the same socket transport as
vpp_papi (the sockclnt_create handshake, then ``>QII``-framed messages packed by
vpp_papi's own serializer from the same API definitions), sends a batch back to back and
reads the replies, which VPP sends in order, on the calling thread. Every change is an
autoreply (a retval). VPP thread.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path
from typing import Any

from ..vppapi import FRAME
from ..vppapi.messages import ApiDefinitions
from .errors import VppIOError, VppProtocolError
from .papi import MAX_MESSAGE

AUTOREPLY = struct.Struct(">HIi")  # _vl_msg_id, context, retval
Request = tuple[str, str, dict[str, Any]]  # message, what (for errors), arguments


class ApiSocket:
    def __init__(self, api_addr: str, api_dir: Path, name: str = "vpp-maglev-changes", timeout: float = 10.0) -> None:
        self.definitions = ApiDefinitions(api_dir)
        self.messages: dict[str, Any] = self.definitions.messages
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.buf = bytearray()
        self.context = 1
        try:
            self.sock.connect(api_addr)
            create = self.messages["sockclnt_create"].pack({"_vl_msg_id": 15, "context": 1, "name": name})
            self._send(create)
            reply = self.messages["sockclnt_create_reply"].unpack(self._frame())[0]
        except OSError as e:
            self.close()
            raise VppIOError(f"{api_addr}: {e}") from None
        self.client_index = int(reply.index)
        table = {m.name: int(m.index) for m in reply.message_table}
        self.ids: dict[str, int] = {}
        for msg_name, msg in self.messages.items():
            index = table.get(f"{msg_name}_{msg.crc[2:]}")
            if index is not None:
                self.ids[msg_name] = index

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def has(self, name: str) -> bool:
        return name in self.ids

    def _send(self, data: bytes) -> None:
        self.sock.sendall(FRAME.pack(0, len(data), 0) + data)

    def _frame(self) -> bytes:
        while True:
            if len(self.buf) >= FRAME.size:
                _, length, _ = FRAME.unpack_from(self.buf)
                if length > MAX_MESSAGE:
                    raise VppProtocolError(f"VPP sent a frame header claiming {length} bytes (at most {MAX_MESSAGE})")
                if len(self.buf) >= FRAME.size + length:
                    data = bytes(self.buf[FRAME.size : FRAME.size + length])
                    del self.buf[: FRAME.size + length]
                    return data
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise OSError("VPP closed the connection")
            self.buf += chunk

    def pipeline(self, requests: list[Request]) -> list[int]:
        """Send every request back to back, then read their retvals (in request order).

        Raises VppIOError when the connection fails, VppProtocolError when VPP answers
        with something that is not a reply to one of them."""
        if not requests:
            return []
        first = self.context + 1
        out = bytearray()
        try:
            for i, (name, _, kwargs) in enumerate(requests):
                msg_id = self.ids.get(name)
                if msg_id is None:
                    raise VppIOError(f"this VPP has no {name}")
                fields = {"_vl_msg_id": msg_id, "client_index": self.client_index, "context": first + i, **kwargs}
                data = self.messages[name].pack(fields)
                out += FRAME.pack(0, len(data), 0) + data
            self.context = first + len(requests)
            self.sock.sendall(out)
            retvals = [0] * len(requests)
            for _ in requests:
                data = self._frame()
                if len(data) < AUTOREPLY.size:
                    raise VppProtocolError(f"VPP answered a change with {len(data)} bytes")
                _, context, retval = AUTOREPLY.unpack_from(data)
                i = context - first
                if not 0 <= i < len(requests):
                    raise VppProtocolError(f"VPP answered context {context}, not one of {first}..{self.context}")
                retvals[i] = retval
        except OSError as e:
            raise VppIOError(f"changes: {e}") from None
        return retvals


__all__ = ["ApiSocket", "Request"]
