"""The Maglev table model against §9 of the spec, the CPU's own CRC-32C and the emulator."""

from __future__ import annotations

import ipaddress
import random
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from maglev import lbtable
from maglev.lbtable import bucket_counts, fill, flow_hash, ip46, xxhash64

from .emu import client, emulator


def v4(last: int, third: int = 0) -> bytes:
    return ip46(bytes([10, 0, third, last]))


def shares(counts: list[int], length: int) -> list[float]:
    return [round(100 * c / length, 1) for c in counts]


# --- the hashes ---------------------------------------------------------------------------


def test_crc32c_is_castagnoli_without_inversion() -> None:
    # The standard check value of CRC-32C ("123456789" -> 0xE3069283) has both inversions;
    # the crc32q step has neither, so apply them around it by hand.
    data = b"12345678"
    crc = 0xFFFFFFFF
    crc = lbtable.crc32c_u64(crc, int.from_bytes(data, "little"))
    crc = lbtable._CRC[(crc ^ ord("9")) & 0xFF] ^ (crc >> 8)
    assert crc ^ 0xFFFFFFFF == 0xE3069283
    assert lbtable.crc32c_u64(0, 0) == 0  # no initial inversion


CASES = [
    # key, clib_xxhash(key) (from a C build of clib_xxhash, on this machine)
    (0, 8000355573975644306),
    (1, 5361387280682687394),
    (0x0100000A00000000, 13560611577170244673),
    (12345678901234567, 14685593798242215212),
]


@pytest.mark.parametrize(("key", "want"), CASES)
def test_xxhash_known_answers(key: int, want: int) -> None:
    assert xxhash64(key) == want


C_CHECK = r"""
#include <stdio.h>
#include <stdint.h>
#include <nmmintrin.h>
typedef uint64_t u64;
static u64 rotl(u64 x, int r) { return (x << r) | (x >> (64 - r)); }
static u64 xxh(u64 k) {
  u64 h = 0x9e3779b97f4a7c13ULL + 2870177450012600261ULL + 8;
  k *= 14029467366897019727ULL; k = rotl(k, 31); k *= 11400714785074694791ULL;
  h ^= k; h = rotl(h, 27) * 11400714785074694791ULL + 9650029242287828579ULL;
  h ^= h >> 33; h *= 14029467366897019727ULL; h ^= h >> 29; h *= 1609587929392839161ULL; h ^= h >> 32;
  return h;
}
int main(void) {
  unsigned long long a, b, c, d, e;
  while (scanf("%llu %llu %llu %llu %llu", &a, &b, &c, &d, &e) == 5) {
    u64 v = 0;
    v = _mm_crc32_u64(v, a); v = _mm_crc32_u64(v, b); v = _mm_crc32_u64(v, c);
    v = _mm_crc32_u64(v, d); v = _mm_crc32_u64(v, e);
    printf("%llu %llu\n", (unsigned long long)(uint32_t)v, (unsigned long long)xxh(a));
  }
  return 0;
}
"""


def test_against_the_cpus_crc32q_and_a_c_xxhash(tmp_path: Path) -> None:
    """The hardware instruction VPP uses, on random words: the model must agree bit for bit."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("needs gcc to build the SSE4.2 reference")
    if "sse4_2" not in Path("/proc/cpuinfo").read_text():
        pytest.skip("this CPU has no SSE4.2 crc32 instruction")
    src = tmp_path / "ref.c"
    src.write_text(C_CHECK)
    exe = tmp_path / "ref"
    subprocess.run([gcc, "-O1", "-msse4.2", "-o", str(exe), str(src)], check=True, capture_output=True)
    rnd = random.Random(7)
    words = [[rnd.getrandbits(64) for _ in range(5)] for _ in range(200)]
    out = subprocess.run(
        [str(exe)], input="".join(" ".join(map(str, w)) + "\n" for w in words), capture_output=True, text=True
    ).stdout.split("\n")
    for w, line in zip(words, out, strict=False):
        crc, xx = map(int, line.split())
        v = 0
        for k in w:
            v = lbtable.crc32c_u64(v, k)
        assert (v, xxhash64(w[0])) == (crc, xx)


def test_flow_hash_words_as_node_c_builds_them() -> None:
    src, dst = bytes([198, 18, 0, 1]), bytes([192, 0, 2, 1])
    # IPv4: k0 = source then destination, one little-endian word; k1 = ports byte-swapped.
    k0 = int.from_bytes(src + dst, "little")
    ports = (0x0004 << 16) | 0x5000  # 1024 and 80 as read off the wire on little-endian
    want = 0
    for k in (k0, ports, 0, 0, 0):
        want = lbtable.crc32c_u64(want, k)
    assert flow_hash(src, dst, 1024, 80) == want
    assert flow_hash(ip46(src), ip46(dst), 1024, 80) == want  # ip46 IPv4 is IPv4
    sticky = 0
    for k in (k0, 0, 0, 0, 0):
        sticky = lbtable.crc32c_u64(sticky, k)
    assert flow_hash(src, dst, 1024, 80, src_ip_sticky=True) == sticky
    s6 = ipaddress.IPv6Address("2001:2::1").packed
    d6 = ipaddress.IPv6Address("2001:db8::1").packed
    want6 = 0
    for half in (s6[:8], s6[8:], d6[:8], d6[8:]):
        want6 = lbtable.crc32c_u64(want6, int.from_bytes(half, "little"))
    want6 = lbtable.crc32c_u64(want6, ports)
    assert flow_hash(s6, d6, 1024, 80) == want6


# --- the fill -----------------------------------------------------------------------------


def test_known_answer_table_by_hand() -> None:
    """8 buckets, 10.0.0.1 at weight 1 and 10.0.0.2 at weight 2 (master), worked from §9:

    10.0.0.1 r0: w0 ^ w1 ^ 0 = 0x0100000a00000000, seed 0xbc30f861da483441: next 1, skip 1
    10.0.0.2 r0: 0x0200000a00000000, seed 0x3153f4209ed2373e: next 0, skip 7
    10.0.0.2 r1: 0x0200000a00000001, seed 0x9f226ee6c7fa87fc: next 6, skip 5
    order (replica, address): .1 r0, .2 r0, .2 r1
    round 1: .1 -> 1, .2r0 -> 0, .2r1 -> 6; round 2: .1 -> 2, .2r0 -> 7, .2r1 -> 3;
    round 3: .1 -> 3 taken, 4; .2r0 -> 6 taken, 5: full, .2r1 gets no third bucket.
    26.06 (one entry each, no replica in the seed): .1 takes 1,2,3,4; .2 takes 0,7,6,5.
    """
    for key, want in ((0x0100000A00000000, 0xBC30F861DA483441), (0x0200000A00000001, 0x9F226EE6C7FA87FC)):
        assert xxhash64(key) == want
    ases = [(v4(1), 1), (v4(2), 2)]
    assert fill(ases, 8) == [1, 0, 0, 1, 0, 1, 1, 1]
    assert fill(ases, 8, weights=False) == [1, 0, 0, 0, 0, 1, 1, 1]
    assert fill(list(reversed(ases)), 8) == [0, 1, 1, 0, 1, 0, 0, 0]  # insertion order never matters


SPEC_EXAMPLES = [
    # (weights, length, expected shares in %) from vpp-lb.md §9
    ([100] * 10 + [50] * 10, 1024, {0: 5.2, 19: 4.9}),
    ([100] * 20 + [10], 1024, {20: 1.0}),
    ([100, 100, 100, 50], 1024, {0: 28.5, 1: 28.4, 2: 28.4, 3: 14.6}),
]


@pytest.mark.parametrize(("weights", "length", "want"), SPEC_EXAMPLES)
def test_spec_examples(weights: list[int], length: int, want: dict[int, float]) -> None:
    ases = [(v4(i + 1), w) for i, w in enumerate(weights)]
    table = fill(ases, length)
    counts = [table.count(i) for i in range(len(ases))]
    assert sum(counts) == length
    assert counts == bucket_counts(ases, length)
    got = shares(counts, length)
    for i, share in want.items():
        assert got[i] == share


def test_no_weight_means_no_server() -> None:
    assert fill([(v4(1), 0)], 16) == [-1] * 16
    assert fill([], 16) == [-1] * 16
    assert bucket_counts([(v4(1), 0)], 16) == [0]
    assert fill([(v4(1), 0)], 16, weights=False) == [0] * 16  # 26.06: in use is enough


def random_vips(seed: int, most: int, longest: int) -> Iterator[tuple[list[lbtable.Entry], int]]:
    """200 random AS sets (addresses unique, weights 0..100) with random table lengths."""
    rnd = random.Random(seed)
    for _ in range(200):
        n = rnd.randint(1, most)
        length = 1 << rnd.randint(1, longest)
        drawn = {v4(rnd.randint(1, 250), rnd.randint(0, 3)): rnd.choice([0, 1, 3, 7, 50, 100]) for _ in range(n)}
        yield list(drawn.items()), length


def test_counts_without_filling_equal_the_fill() -> None:
    for ases, length in random_vips(3, 25, 11):
        for weights in (True, False):
            table = fill(ases, length, weights)
            assert [table.count(i) for i in range(len(ases))] == bucket_counts(ases, length, weights)


def test_length_must_be_a_power_of_two() -> None:
    with pytest.raises(ValueError, match="power of two"):
        fill([(v4(1), 1)], 1000)


# --- the emulator is filled by the model ----------------------------------------------


def test_emulator_counts_and_positions_equal_the_model(tmp_path: Path) -> None:
    rnd = random.Random(11)
    with emulator(tmp_path) as (emu, _), client(emu) as c:
        for n in range(6):
            pfx = f"192.0.2.{n + 1}/32"
            length = 1 << rnd.randint(4, 11)
            r = c.api.lb_add_del_vip_v2(pfx=pfx, protocol=6, port=80, encap=0, new_flows_table_length=length)
            assert r.retval == 0
            ases: dict[str, int] = {}
            for _ in range(rnd.randint(1, 30)):
                addr = f"10.{n}.{rnd.randint(0, 3)}.{rnd.randint(1, 250)}"
                w = rnd.choice([0, 1, 3, 50, 100, rnd.randint(0, 100)])
                r = c.api.lb_add_del_as_v2(pfx=pfx, protocol=6, port=80, as_address=addr, weight=w)
                if addr in ases:
                    assert r.retval == -81  # VALUE_EXIST: the first weight stays
                else:
                    ases[addr] = w
            entries = [(ip46(ipaddress.ip_address(a).packed), w) for a, w in ases.items()]
            want = dict(zip(ases, bucket_counts(entries, length), strict=True))
            got = {str(d.app_srv): d.num_buckets for d in c.api.lb_as_v2_dump() if str(d.vip.pfx) == pfx}
            assert got == want
            owners = [list(ases)[i] if i >= 0 else None for i in fill(entries, length)]
            assert emu.new_flow_table(pfx, 6, 80) == owners


def test_emulator_traffic_lands_where_the_hash_says(tmp_path: Path) -> None:
    """A flow's AS is the owner of bucket ``flow_hash & mask``: the simulator's clients
    (198.18.0.0/15 from seed * 65536, source ports from 1024) counted per AS."""
    with emulator(tmp_path) as (emu, _), client(emu) as c:
        c.api.lb_add_del_vip_v2(pfx="192.0.2.9/32", protocol=6, port=80, encap=0, new_flows_table_length=64)
        for i in range(1, 4):
            c.api.lb_add_del_as_v2(pfx="192.0.2.9/32", protocol=6, port=80, as_address=f"10.0.0.{i}", weight=100)
        table = emu.new_flow_table("192.0.2.9/32", 6, 80)
        dst = bytes([192, 0, 2, 9])
        predicted: dict[str, int] = {}
        for f in range(200):
            src = (0xC6120000 + 65536 + f).to_bytes(4, "big")
            owner = table[flow_hash(src, dst, 1024 + f, 80) & 63]
            assert owner is not None
            predicted[owner] = predicted.get(owner, 0) + 1
        out = emu.traffic("192.0.2.9/32", flows=200, packets=1, protocol="tcp", port=80, seed=1)
        got = {addr: int(n) for addr, n in (line.split() for line in out.splitlines()[:-1])}
        assert got == predicted
        assert len(got) == 3


def test_emulator_v2606_one_entry_per_as_by_address(tmp_path: Path) -> None:
    with emulator(tmp_path, "v26.06") as (emu, _), client(emu) as c:
        vip = {"pfx": {"address": "192.0.2.9", "len": 128}, "protocol": 6, "port": 80}
        assert c.api.lb_add_del_vip(**vip, encap=0, new_flows_table_length=32).retval == 0
        addrs = ["10.0.0.9", "10.0.0.3", "10.0.0.5"]
        for a in addrs:
            assert c.api.lb_add_del_as(**vip, as_address=a).retval == 0
        entries = [(ip46(ipaddress.ip_address(a).packed), 100) for a in addrs]
        owners = [addrs[i] for i in fill(entries, 32, weights=False)]
        assert emu.new_flow_table("192.0.2.9/32", 6, 80) == owners
        assert sorted(owners.count(a) for a in addrs) == [10, 11, 11]


def test_the_compiled_loop_fills_as_the_python_one() -> None:
    if lbtable._lbfill is None:
        pytest.skip("the _lbfill extension is not built (python setup.py build_ext --inplace)")
    for ases, length in random_vips(5, 40, 12):
        for weights in (True, False):
            assert fill(ases, length, weights) == fill(ases, length, weights, compiled=False)
    with pytest.raises(ValueError, match="power of two"):
        lbtable._lbfill.fill(b"\0\0\0\0", b"\1\0\0\0", b"\0\0\0\0", 1000)
    with pytest.raises(ValueError, match="equal, non-empty"):
        lbtable._lbfill.fill(b"", b"", b"", 16)


@pytest.mark.parametrize(
    ("counts", "length", "rounds"),
    [
        ([100] * 100, 1024, 11),  # 1,100 entries reach 1,024
        ([100] * 100, 65536, 100),  # every replica is needed
        ([1, 1, 50], 8, 6),  # two ASes run out after round 0
        ([1], 1024, 1),
        ([], 16, 0),
    ],
)
def test_rounds_to_fill(counts: list[int], length: int, rounds: int) -> None:
    assert lbtable.rounds_to_fill(counts, length) == rounds


def test_a_fill_hashes_only_the_replicas_that_reach_the_table() -> None:
    """The permutations of replicas past the round that fills the table are never used:
    the table is the same without them, and they are not worked out."""
    ases = sorted((v4(i % 250 + 1, i // 250), 100) for i in range(100))
    lbtable._PERMUTATIONS.clear()
    bounded = fill(ases, 1024)
    assert {len(lbtable._PERMUTATIONS[(a, 1023)][0]) for a, _ in ases} == {11}
    for address, _ in ases:  # every replica worked out, as before the bound
        lbtable._PERMUTATIONS.pop((address, 1023))
        lbtable._permutations(address, 100, 1023)
    assert fill(ases, 1024) == bounded
    lbtable._PERMUTATIONS.clear()


def test_the_compiled_permutations_are_the_python_ones() -> None:
    if lbtable._lbfill is None:
        pytest.skip("the _lbfill extension is not built (python setup.py build_ext --inplace)")
    rng = random.Random(7)
    for _ in range(50):
        address = rng.randbytes(16)
        first, replicas, mask = rng.randrange(0, 50), rng.randrange(50, 300), (1 << rng.randrange(1, 24)) - 1
        compiled = lbtable._more_permutations(address, first, replicas, mask)
        assert compiled == lbtable._more_permutations(address, first, replicas, mask, compiled=False)
        assert len(compiled[0]) == replicas - first and all(s & 1 or mask == 0 for s in compiled[1])
    with pytest.raises(ValueError, match="at most 2"):
        lbtable._lbfill.permutations(0, 0, (1 << 30) + 1, 1023)
