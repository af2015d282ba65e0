"""VPP's new-flow (Maglev) table, exactly as the lb plugin fills and hashes it. Pure.

The fill and flow hash of both VPP generations (spec: vpp-lb.md §9): master enters each
AS in use with a weight ``w > 0`` as ``w`` replicas sorted by (replica, address) and
seeds each replica's permutation with ``xxhash(w0 ^ w1 ^ replica)``; 26.06 has no
weights, so each AS in use is one entry, sorted by address, seeded with
``xxhash(w0 ^ w1)``; that is master's fill with every weight 1. Round robin over the
entries, each takes the first free bucket along its permutation, until the table is
full (mid-round if need be). A flow's bucket is ``hash & (length - 1)``, the hash a
CRC-32C chain over five 64-bit words of its addresses and ports.

The emulator fills its tables with this module, and the control plane predicts them
with it (change previews, weight fidelity, cross-node digests); so a difference
between what maglevd says and what VPP does can only be a difference in the inputs.
"""

from __future__ import annotations

import hashlib
import ipaddress
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from types import MappingProxyType, ModuleType

_lbfill: ModuleType | None
try:
    from . import _lbfill  # the fill's loop in C (setup.py builds it)
except ImportError:  # a source tree not built: the same loop in Python
    _lbfill = None

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Entry = tuple[bytes, int]  # (ip46 address, weight); the weight is ignored without weights

_M64 = (1 << 64) - 1
_P1 = 11400714785074694791
_P2 = 14029467366897019727
_P3 = 1609587929392839161
_P4 = 9650029242287828579
_P5 = 2870177450012600261
_H0 = (0x9E3779B97F4A7C13 + _P5 + 8) & _M64
_V4_PREFIX = bytes(12)


def ip46(address: IPAddress | bytes) -> bytes:
    """The 16 bytes VPP stores an address in: IPv4 as 12 zero bytes then its 4 bytes."""
    raw = address if isinstance(address, bytes) else address.packed
    return _V4_PREFIX + raw if len(raw) == 4 else raw


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _M64


def xxhash64(key: int) -> int:
    """VPP's one-word xxHash (``clib_xxhash``)."""
    k = _rotl((key * _P2) & _M64, 31) * _P1 & _M64
    h = _H0 ^ k
    h = (_rotl(h, 27) * _P1 + _P4) & _M64
    h ^= h >> 33
    h = h * _P2 & _M64
    h ^= h >> 29
    h = h * _P3 & _M64
    return h ^ (h >> 32)


def _crc_table() -> tuple[int, ...]:
    out = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        out.append(c)
    return tuple(out)


_CRC = _crc_table()


def crc32c_u64(crc: int, word: int) -> int:
    """One SSE4.2 ``crc32q`` step: CRC-32C of the 8 bytes of ``word``, least significant
    first, onto ``crc``; no inversion (VPP's ``clib_crc32c_u64``)."""
    for _ in range(8):
        crc = _CRC[(crc ^ word) & 0xFF] ^ (crc >> 8)
        word >>= 8
    return crc


def _word(b: bytes) -> int:
    return int.from_bytes(b, "little")


def _swap16(port: int) -> int:
    return ((port & 0xFF) << 8) | (port >> 8)


def flow_hash(src: bytes, dst: bytes, sport: int, dport: int, src_ip_sticky: bool = False) -> int:
    """The 32-bit hash of a new flow (node.c's ``lb_node_get_hash``): addresses as 4 or 16
    bytes (an ip46 IPv4 address counts as IPv4), ports as numbers. A flow's bucket is
    ``flow_hash(...) & (length - 1)``; ``src_ip_sticky`` VIPs hash without the ports."""
    if len(src) == 16 and src[:12] == _V4_PREFIX:
        src = src[12:]
    if len(dst) == 16 and dst[:12] == _V4_PREFIX:
        dst = dst[12:]
    # Ports as VPP reads them off the wire into a little-endian register: byte-swapped.
    ports = 0 if src_ip_sticky else (_swap16(sport) << 16) | _swap16(dport)
    if len(src) == 4:
        words: tuple[int, ...] = (_word(src + dst), ports, 0, 0, 0)
    else:
        words = (_word(src[:8]), _word(src[8:]), _word(dst[:8]), _word(dst[8:]), ports)
    v = 0
    for w in words:
        v = crc32c_u64(v, w)
    return v


def _seed_base(address16: bytes) -> int:
    return _word(address16[:8]) ^ _word(address16[8:])


_PERMUTATIONS: dict[tuple[bytes, int], tuple[tuple[int, ...], tuple[int, ...]]] = {}
_PERMUTATIONS_KEPT = 1 << 14  # ASes x table lengths; all forgotten past that (one refill each)


def _permutations(address16: bytes, replicas: int, mask: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The first buckets and skips of an AS's replicas 0..replicas-1 at least (26.06: replica
    0 only). Kept, and extended when a weight grows: the same ASes are filled again after
    every change of one of them (threads racing here at worst compute one twice)."""
    key = (address16, mask)
    perms = _PERMUTATIONS.get(key, ((), ()))
    if len(perms[0]) < replicas:
        # extended into new tuples, swapped in whole: a thread reading the old one is unaffected
        nexts, skips = _more_permutations(address16, len(perms[0]), replicas, mask)
        perms = (perms[0] + nexts, perms[1] + skips)
        if len(_PERMUTATIONS) >= _PERMUTATIONS_KEPT:
            _PERMUTATIONS.clear()
        _PERMUTATIONS[key] = perms
    return perms


def _more_permutations(
    address16: bytes, first: int, replicas: int, mask: int, compiled: bool = True
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The first buckets and skips of replicas ``first``..``replicas``-1, in C where built."""
    base = _seed_base(address16)
    if compiled and _lbfill is not None:
        nexts, skips = _lbfill.permutations(base, first, replicas - first, mask)
        return tuple(array("I", nexts)), tuple(array("I", skips))
    seeds = [xxhash64(base ^ r) for r in range(first, replicas)]
    return tuple((x >> 32) & mask for x in seeds), tuple(((x & 0xFFFFFFFF) | 1) & mask for x in seeds)


def _entries(ases: Sequence[Entry], length: int, weights: bool) -> tuple[list[int], list[int], list[int]]:
    """(owners, first buckets, skips) of the fill's entries in its order, (replica, address),
    cut at ``length`` (later entries never get a bucket: the first round fills the table)."""
    order = sorted((a[0], i) for i, a in enumerate(ases) if not weights or a[1] > 0)
    m = length - 1
    count = {i: min(ases[i][1], length) if weights else 1 for _, i in order}
    # Only replicas of the rounds that reach the table need a permutation: 100 ASes of
    # weight 100 in 1,024 buckets fill it in 11 rounds (1,100 hashes, not 10,000).
    rounds = rounds_to_fill(sorted(count.values()), length)
    perms = {i: _permutations(addr, min(count[i], rounds), m) for addr, i in order}
    owners: list[int] = []
    nexts: list[int] = []
    skips: list[int] = []
    alive = [i for _, i in order]
    r = 0
    while alive and len(owners) < length:
        for i in alive:
            p = perms[i]
            owners.append(i)
            nexts.append(p[0][r])
            skips.append(p[1][r])
        r += 1
        alive = [i for i in alive if count[i] > r]
    return owners[:length], nexts[:length], skips[:length]


def rounds_to_fill(counts: Sequence[int], length: int) -> int:
    """How many rounds of the fill's entries (round r: every AS with more than r replicas,
    ``counts`` sorted) it takes to reach ``length`` entries, or to run out of them."""
    total = r = 0
    alive = len(counts)
    while alive and total < length:
        total += alive
        r += 1
        alive = len(counts) - bisect_right(counts, r)
    return r


def check_length(length: int) -> None:
    if length <= 0 or length & (length - 1):
        raise ValueError(f"table length must be a power of two, got {length}")


def fill(ases: Sequence[Entry], length: int, weights: bool = True, compiled: bool = True) -> list[int]:
    """The new-flow table: bucket -> position of its AS in ``ases``, -1 for none ("no
    server": every AS removed or at weight 0). ``ases`` are the VIP's ASes in use. The
    loop runs in C where the extension is built (``compiled``), else here: same table."""
    check_length(length)
    owners, nexts, skips = _entries(ases, length, weights)
    if not owners:
        return [-1] * length
    if compiled and _lbfill is not None:
        raw = _lbfill.fill(
            array("I", nexts).tobytes(), array("I", skips).tobytes(), array("I", owners).tobytes(), length
        )
        return array("i", raw).tolist()
    return _fill_here(owners, nexts, skips, length)


def _fill_here(owners: list[int], nexts: list[int], skips: list[int], length: int) -> list[int]:
    m = length - 1
    table = [-1] * length
    left = length
    n = len(owners)
    while True:
        for j in range(n):
            c = nexts[j]
            s = skips[j]
            while table[c] >= 0:
                c = (c + s) & m
            table[c] = owners[j]
            nexts[j] = (c + s) & m
            left -= 1
            if not left:
                return table


def bucket_counts(ases: Sequence[Entry], length: int, weights: bool = True) -> list[int]:
    """Each AS's number of buckets, without filling (counts do not depend on the hash:
    whole rounds give each AS its weight, the last partial round goes to the first
    entries in (replica, address) order)."""
    check_length(length)
    counts = [0] * len(ases)
    w = [(a[1] if weights else 1) if (a[1] > 0 or not weights) else 0 for a in ases]
    total = sum(w)
    if not total:
        return counts
    rounds, rest = divmod(length, total)
    for i, wi in enumerate(w):
        counts[i] = wi * rounds
    if rest:
        by_address = sorted(range(len(ases)), key=lambda i: ases[i][0])
        levels = sorted(set(w))  # replicas r < level exist for the ASes of at least that weight
        r = 0
        alive = [i for i in by_address if w[i] > 0]
        for level in levels:
            if not level:
                continue
            span = level - r  # whole rounds of replicas r .. level-1 over ``alive``
            whole = min(span, rest // len(alive))
            for i in alive:
                counts[i] += whole
            rest -= whole * len(alive)
            r += whole
            if whole < span:
                for i in alive[:rest]:
                    counts[i] += 1
                break
            alive = [i for i in alive if w[i] > level]
    return counts


# --- weight fidelity --------------------------------------------------------------------


def programmed_weight(weight: int, scale: int) -> int:
    """The weight given to VPP for a configured one when a VIP's weights are scaled by
    ``scale``/100: never 0 for a weight above 0 (that would take the AS out)."""
    if weight <= 0:
        return 0
    if scale >= 100:
        return weight
    return max(1, (weight * scale + 50) // 100)


def share_error(weights: Sequence[int], counts: Sequence[int]) -> float:
    """The worst AS's |bucket share - weight share| (a fraction of the table)."""
    total_w = sum(weights)
    total_b = sum(counts)
    if not total_w or not total_b:
        return 0.0
    return max(abs(c / total_b - w / total_w) for w, c in zip(weights, counts, strict=True))


FIT_TARGET = 0.005  # the share error a scale is chosen to stay under (half a percentage point)
WARN_ERROR = 0.01  # and the one --check and reloads warn at (1 percentage point)


@lru_cache(maxsize=4096)
def fit_scale(ases: tuple[Entry, ...], length: int) -> int:
    """The largest weight scale (percent, 1..100) whose table honours the weights within
    FIT_TARGET (or, where none does, the one closest): every weight ``w`` is programmed
    as ``programmed_weight(w, scale)``. Chosen once from the configured weights, so one
    backend's change later moves only its own replicas."""
    weights = [w for _, w in ases]
    if not any(weights):
        return 100
    best, best_err = 100, 2.0
    for scale in range(100, 0, -1):
        programmed = [(a, programmed_weight(w, scale)) for a, w in ases]
        err = share_error(weights, bucket_counts(programmed, length))
        if err <= FIT_TARGET:
            return scale
        if err < best_err - 1e-12:
            best, best_err = scale, err
    return best


# --- comparing tables ---------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """A filled table with its owners' addresses: what VPP holds for one VIP."""

    length: int
    addresses: tuple[bytes, ...]  # ip46, one per AS in the fill's input
    weights: tuple[int, ...]  # as programmed (all 1 without weights)
    buckets: tuple[int, ...]  # bucket -> position in ``addresses``, -1 none

    def owner(self, bucket: int) -> bytes | None:
        i = self.buckets[bucket]
        return None if i < 0 else self.addresses[i]

    def counts(self) -> Mapping[bytes, int]:
        """Buckets per AS (read-only; worked out once: the API reads it on every call)."""
        return self._counts

    @cached_property
    def _counts(self) -> Mapping[bytes, int]:
        out = dict.fromkeys(self.addresses, 0)
        for i in self.buckets:
            if i >= 0:
                out[self.addresses[i]] += 1
        return MappingProxyType(out)

    def digest(self) -> str:
        return self._digest

    @cached_property
    def _digest(self) -> str:
        """16 hex digits naming the table's contents, bucket by bucket: equal on two routers
        exactly when every flow hashes to the same AS on both."""
        h = hashlib.blake2b(digest_size=8)
        h.update(self.length.to_bytes(4, "big"))
        none = bytes(16)
        for i in self.buckets:
            h.update(none if i < 0 else self.addresses[i])
        return h.hexdigest()


@lru_cache(maxsize=256)
def table(ases: tuple[Entry, ...], length: int, weights: bool = True) -> Table:
    """The table of the VIP's ASes in use (``ases`` sorted so that equal inputs share a cache
    entry: the fill does not depend on their order)."""
    buckets = fill(ases, length, weights)
    return Table(length, tuple(a for a, _ in ases), tuple(w if weights else 1 for _, w in ases), tuple(buckets))


def table_of(ases: Mapping[IPAddress, int], length: int, weights: bool = True) -> Table:
    """The table of ``address -> weight as programmed`` (ASes in use only)."""
    entries = tuple(sorted((ip46(a), w) for a, w in ases.items()))
    return table(entries, length, weights)


def moves(before: Table, after: Table) -> dict[tuple[bytes | None, bytes | None], int]:
    """(from AS, to AS) -> buckets that change owner; None is "no server". Tables of two
    lengths are compared bucket by bucket over the longer, the shorter repeating (a flow's
    bucket is its hash masked to the length)."""
    n = max(before.length, after.length)
    out: dict[tuple[bytes | None, bytes | None], int] = {}
    for b in range(n):
        x, y = before.owner(b & (before.length - 1)), after.owner(b & (after.length - 1))
        if x != y:
            out[(x, y)] = out.get((x, y), 0) + 1
    return out


def minimum_moves(before: Mapping[bytes, int], after: Mapping[bytes, int]) -> int:
    """The fewest buckets any fill could move between these two bucket counts: what the
    ASes that lose buckets lose."""
    return sum(max(0, n - after.get(a, 0)) for a, n in before.items())


def show_address(address16: bytes | None) -> str:
    if address16 is None:
        return "none"
    if address16[:12] == _V4_PREFIX:
        return str(ipaddress.IPv4Address(address16[12:]))
    return str(ipaddress.IPv6Address(address16))


def entries(items: Iterable[tuple[IPAddress, int]]) -> tuple[Entry, ...]:
    return tuple(sorted((ip46(a), w) for a, w in items))
