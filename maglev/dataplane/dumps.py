"""Bulk reads of VPP's lb state over a second API connection. VPP thread.

vpp_papi hands every received message from its reader thread to the caller
one at a time and decodes it field by field: about 0.1 ms a message, so
dumping 16,000 ASes took seconds. This reader speaks the same socket
transport (the sockclnt_create handshake, then the dump and a control_ping
on one context, answered in order), decodes the details with struct layouts
compiled from the same API JSON files, and is used for dumps only; every
change still goes through vpp_papi.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path
from typing import Any

from ..vppapi import FRAME
from ..vppapi.codec import FastDecoder, compile_decoders
from ..vppapi.messages import ApiDefinitions

HANDSHAKE = ("sockclnt_create", "sockclnt_create_reply")
DUMPS = {
    "lb_vip_dump": "lb_vip_details",
    "lb_as_dump": "lb_as_details",
    "lb_as_v2_dump": "lb_as_v2_details",
}


class DumpError(Exception):
    pass


class DumpReader:
    def __init__(self, api_addr: str, api_dir: Path, timeout: float = 10.0) -> None:
        definitions = ApiDefinitions(api_dir)
        self.messages: dict[str, Any] = definitions.messages
        names = [*DUMPS, *DUMPS.values(), "control_ping", "control_ping_reply"]
        self.decoders: dict[str, FastDecoder] = compile_decoders(definitions.files, names)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(api_addr)
        self.buf = bytearray()
        self.context = 1
        create = self.messages["sockclnt_create"].pack({"_vl_msg_id": 15, "context": 1, "name": "vpp-maglev-dumps"})
        self._send(create)
        reply = self.messages["sockclnt_create_reply"].unpack(self._frame())[0]
        self.client_index = int(reply.index)
        table = {m.name: int(m.index) for m in reply.message_table}
        self.ids: dict[str, int] = {}
        for name in names:
            msg = self.messages.get(name)
            if msg is not None and f"{name}_{msg.crc[2:]}" in table:
                self.ids[name] = table[f"{name}_{msg.crc[2:]}"]
        self.names = {i: n for n, i in self.ids.items()}

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def _send(self, data: bytes) -> None:
        self.sock.sendall(FRAME.pack(0, len(data), 0) + data)

    def _frame(self) -> bytes:
        while True:
            if len(self.buf) >= FRAME.size:
                _, length, _ = FRAME.unpack_from(self.buf)
                if len(self.buf) >= FRAME.size + length:
                    data = bytes(self.buf[FRAME.size : FRAME.size + length])
                    del self.buf[: FRAME.size + length]
                    return data
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise DumpError("VPP closed the connection")
            self.buf += chunk

    def has(self, dump: str) -> bool:
        return dump in self.ids and DUMPS[dump] in self.decoders and "control_ping" in self.ids

    def dump(self, name: str, **fields: Any) -> list[Any]:
        """All details of one old-style dump, decoded as vpp_papi's _no_type_conversion does."""
        if not self.has(name):
            raise DumpError(f"{name} is not available")
        self.context = (self.context + 1) & 0x7FFFFFFF or 1
        request = {"_vl_msg_id": self.ids[name], "client_index": self.client_index, "context": self.context, **fields}
        ping = {"_vl_msg_id": self.ids["control_ping"], "client_index": self.client_index, "context": self.context}
        self._send(self.messages[name].pack(request))
        self._send(self.messages["control_ping"].pack(ping))
        details, decoder = self.ids.get(DUMPS[name]), self.decoders[DUMPS[name]]
        pong = self.ids["control_ping_reply"]
        out = []
        while True:
            data = self._frame()
            msg_id = struct.unpack_from(">H", data)[0]
            if msg_id == details:
                out.append(decoder.unpack(data))
            elif msg_id == pong:
                return out
