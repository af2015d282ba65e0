"""A stats segment that vpp_papi's VPPStats reads, as VPP's version-2 layout.

The segment is a memfd handed to each client over a SOCK_SEQPACKET unix socket
with SCM_RIGHTS. Layout: the shared header ``QPQQPP`` (version 2, base
pointer, epoch, in_progress, directory vector, error vector) at offset 0;
vectors are preceded by an 8-byte header whose first u32 is the length;
pointers are ``base + offset``. Structure changes (a counter vector growing)
rewrite the segment with in_progress set and bump the epoch; counter values
are updated in place, as VPP does.
"""

from __future__ import annotations

import mmap
import os
import socket
import struct
import time
from collections.abc import Sequence

HEADER = struct.Struct("QPQQPP")
DIRENTRY = struct.Struct("IQ128s")
BASE = 0x7F00_0000_0000
STAT_DIR_TYPE_SCALAR_INDEX = 1
STAT_DIR_TYPE_COUNTER_VECTOR_SIMPLE = 2
STAT_DIR_TYPE_COUNTER_VECTOR_COMBINED = 3  # per thread, (packets, bytes) pairs


class StatsSegment:
    def __init__(self, size: int = 16 * 1024 * 1024, boottime: float | None = None) -> None:
        self.size = size
        self.fd = os.memfd_create("vpp-maglev-emu-stats", os.MFD_CLOEXEC)
        os.ftruncate(self.fd, size)
        self.map = mmap.mmap(self.fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self.epoch = 0
        self.boottime = int(boottime if boottime is not None else time.time())
        self._shape: tuple[int, ...] | None = None
        self._counter_offsets: list[list[int]] = []  # [counter][thread] -> offset of the u64 vector
        self._combined: tuple[str, ...] = ()
        self._scalars: dict[str, float] = {}
        self._scalar_offsets: dict[str, int] = {}
        self.update([], [], {"/sys/boottime": self.boottime})

    def update(
        self,
        names: Sequence[str],
        counters: Sequence[Sequence[Sequence[int]]],
        scalars: dict[str, float],
        combined: Sequence[str] = (),
    ) -> None:
        """Publish counters ``counters[c][thread][index]`` named ``names[c]``, and scalars.

        A counter named in ``combined`` is a combined one: its per-thread lists are the
        (packets, bytes) pairs flattened, ``[p0, b0, p1, b1, ...]``."""
        shape = (len(names), *(len(per_thread) for c in counters for per_thread in c))
        if shape != self._shape or set(scalars) != set(self._scalars) or tuple(combined) != self._combined:
            self._combined = tuple(combined)
            self._rebuild(names, counters, scalars)
            return
        for c, per_counter in enumerate(counters):
            for t, values in enumerate(per_counter):
                offset = self._counter_offsets[c][t]
                struct.pack_into(f"{len(values)}Q", self.map, offset, *values)
        for name, value in scalars.items():
            struct.pack_into("Q", self.map, self._scalar_offsets[name], int(value))
        self._scalars = dict(scalars)

    def _rebuild(
        self, names: Sequence[str], counters: Sequence[Sequence[Sequence[int]]], scalars: dict[str, float]
    ) -> None:
        m = self.map
        _, _, _, _, directory_ptr, _ = HEADER.unpack_from(m, 0) if self._shape is not None else (0,) * 6
        HEADER.pack_into(m, 0, 2, BASE, self.epoch, 1, directory_ptr, 0)  # in_progress while rewriting
        cursor = [HEADER.size]

        def vector(elem: int, count: int) -> int:
            start = (cursor[0] + 7) // 8 * 8 + 8  # 8-byte vector header before the data
            struct.pack_into("I", m, start - 8, count)
            cursor[0] = start + max(elem * count, 8)
            if cursor[0] > self.size:
                raise MemoryError("stats segment full")
            return start

        entries: list[tuple[int, int, str]] = []
        self._scalar_offsets = {}
        self._counter_offsets = []
        for c, name in enumerate(names):
            per_thread = counters[c]
            pairs = name in self._combined
            threads_vec = vector(8, len(per_thread))
            offsets = []
            for t, values in enumerate(per_thread):
                data = vector(16, len(values) // 2) if pairs else vector(8, len(values))
                struct.pack_into(f"{len(values)}Q", m, data, *values)
                struct.pack_into("Q", m, threads_vec + 8 * t, BASE + data)
                offsets.append(data)
            self._counter_offsets.append(offsets)
            kind = STAT_DIR_TYPE_COUNTER_VECTOR_COMBINED if pairs else STAT_DIR_TYPE_COUNTER_VECTOR_SIMPLE
            entries.append((kind, BASE + threads_vec, name))
        for name, value in scalars.items():
            entries.append((STAT_DIR_TYPE_SCALAR_INDEX, int(value), name))
        directory = vector(DIRENTRY.size, len(entries))
        for i, (kind, value, name) in enumerate(entries):
            offset = directory + i * DIRENTRY.size
            DIRENTRY.pack_into(m, offset, kind, value, name.encode()[:127])
            if kind == STAT_DIR_TYPE_SCALAR_INDEX:
                self._scalar_offsets[name] = offset + 8
        self.epoch += 1
        HEADER.pack_into(m, 0, 2, BASE, self.epoch, 0, BASE + directory, 0)
        self._shape = (len(names), *(len(per_thread) for c in counters for per_thread in c))
        self._scalars = dict(scalars)

    def hand_over(self, conn: socket.socket) -> None:
        """Give the segment's fd to a stats client, as VPP does on connect."""
        conn.sendmsg([b"\0"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", self.fd))])

    def close(self) -> None:
        self.map.close()
        os.close(self.fd)
