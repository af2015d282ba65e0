"""The Maglev service's methods, registered from its descriptor so that a handler may
answer with bytes already serialized.

ListBackends serializes its 10,000 backends a batch at a time between turns of the
reactor; the generated ``add_MaglevServicer_to_server`` would hand its answer to the
message's own ``SerializeToString`` in one piece. Everything else answers messages as
before. ``LocalStub`` (the web UI's way in) turns such bytes back into the message.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from .gen.maglev.v1 import maglev_pb2 as pb

SERVICE = pb.DESCRIPTOR.services_by_name["Maglev"]

_MAKERS = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def varint(n: int) -> bytes:
    """``n`` (>= 0) as a protobuf varint: the length before a length-delimited field's bytes.
    The library has no public encoder; a cached message's framing needs only this."""
    if n < 0x80:
        return bytes((n,))
    if n < 0x4000:  # a backend's message: most are 128 bytes to 16 KiB
        return bytes((n & 0x7F | 0x80, n >> 7))
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def serialized(answer: Message | bytes) -> bytes:
    return answer if isinstance(answer, bytes) else answer.SerializeToString()


def message_of(method: MethodDescriptor, answer: Any) -> Any:
    """The answer as its message: parsed when the handler gave bytes."""
    if isinstance(answer, bytes):
        return message_factory.GetMessageClass(method.output_type).FromString(answer)
    return answer


def add_to_server(servicer: Any, server: grpc.aio.Server) -> None:
    handlers = {
        m.name: _MAKERS[(m.client_streaming, m.server_streaming)](
            getattr(servicer, m.name),
            request_deserializer=message_factory.GetMessageClass(m.input_type).FromString,
            response_serializer=serialized,
        )
        for m in SERVICE.methods
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE.full_name, handlers),))
    server.add_registered_method_handlers(SERVICE.full_name, handlers)
