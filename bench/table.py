"""The Maglev table model: fill time, weight fidelity, buckets moved per change.

    python bench/table.py              # everything
    python bench/table.py --repeat 9   # more runs for the fill times

Fill: the exact fill of VPP master (lbtable.fill) for a 65,536-bucket VIP with 100 ASes
at weight 100 (10,000 replicas) and a few other shapes, median and spread of the runs.

Fidelity: for pools of mixed weights, the worst AS's |bucket share - weight share| with
the weights given to VPP as configured and with fit-weights (one scale per pool).

Disruption: for every single-backend change of each pool (down, weight halved), the
buckets that change owner against the fewest any fill could move (what the AS that loses
buckets loses), as configured, with fit-weights (the scale fixed by the config), and with
the scale worked out again for every change (what fit-weights avoids): the median and
worst ratio moved / minimum.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from maglev import lbtable
from maglev.lbtable import Entry, fill, fit_scale, programmed_weight


def pool(weights: list[int]) -> list[Entry]:
    return [(lbtable.ip46(bytes([10, 0, i // 250, 1 + i % 250])), w) for i, w in enumerate(weights)]


def timed(fn: object, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append(time.perf_counter() - t)
    return out


def fills(repeat: int) -> None:
    print("fill (VPP master's), ms                compiled loop: median  min  max   Python loop: median")
    for n, w, length in ((100, 100, 65536), (1000, 100, 65536), (20, 100, 1024), (100, 100, 1024), (8, 1, 4 << 20)):
        entries = pool([w] * n)
        fill(entries, length)  # the seeds are cached after a first fill, as in the daemon
        runs = timed(lambda e=entries, ln=length: fill(e, ln), repeat)
        slow = timed(lambda e=entries, ln=length: fill(e, ln, compiled=False), max(1, repeat // 3))
        label = f"{n} ASes x {w}, {length} buckets"
        print(
            f"  {label:<36} {statistics.median(runs) * 1000:>10.2f} {min(runs) * 1000:>7.2f} "
            f"{max(runs) * 1000:>7.2f} {statistics.median(slow) * 1000:>12.1f}"
        )


SHAPES = [
    ("10x100 + 10x50", [100] * 10 + [50] * 10, 1024),
    ("20x100 + 1x10", [100] * 20 + [10], 1024),
    ("3x100 + 1x50", [100, 100, 100, 50], 1024),
    ("100 + 50", [100, 50], 1024),
    ("16 x 100", [100] * 16, 1024),
    ("40 x 1..100", [1 + (i * 37) % 100 for i in range(40)], 1024),
    ("40 x 1..100", [1 + (i * 37) % 100 for i in range(40)], 8192),
    ("100 x 100/50/25", [(100, 50, 25)[i % 3] for i in range(100)], 65536),
]


def error(entries: list[Entry], scale: int, length: int) -> float:
    programmed = [(a, programmed_weight(w, scale)) for a, w in entries]
    return lbtable.share_error([w for _, w in entries], lbtable.bucket_counts(programmed, length))


def moved(before: list[Entry], after: list[Entry], length: int) -> tuple[int, int]:
    tb = lbtable.table(tuple(sorted(before)), length)
    ta = lbtable.table(tuple(sorted(after)), length)
    n = sum(lbtable.moves(tb, ta).values())
    return n, lbtable.minimum_moves(tb.counts(), ta.counts())


def scaled(entries: list[Entry], scale: int) -> list[Entry]:
    return [(a, programmed_weight(w, scale)) for a, w in entries if w > 0]


def fidelity_and_disruption() -> None:
    print()
    print("fidelity: worst |bucket share - weight share|, percentage points")
    print(f"  {'pool':<18} {'length':>7} {'as configured':>14} {'fit-weights':>12} {'scale':>6}")
    for name, weights, length in SHAPES:
        entries = pool(weights)
        s = fit_scale(tuple(sorted(entries)), length)
        print(f"  {name:<18} {length:>7} {100 * error(entries, 100, length):>14.2f} "
              f"{100 * error(entries, s, length):>12.2f} {s:>5}%")  # fmt: skip
    print()
    print("disruption: buckets moved / the minimum, per single-backend change (median, worst)")
    print(f"  {'pool':<18} {'length':>7} {'change':<8} {'as configured':>16} {'fit-weights':>16} {'refit each':>16}")
    for name, weights, length in SHAPES:
        entries = pool(weights)
        s = fit_scale(tuple(sorted(entries)), length)
        for change in ("down", "halved"):
            ratios: dict[str, list[float]] = {"as configured": [], "fit": [], "refit": []}
            for i in range(len(entries)):
                a, w = entries[i]
                new_w = 0 if change == "down" else max(1, w // 2)
                after = [*entries[:i], (a, new_w), *entries[i + 1 :]]
                for key, b, c in (
                    ("as configured", entries, after),
                    ("fit", scaled(entries, s), scaled(after, s)),
                    ("refit", scaled(entries, s), scaled(after, fit_scale(tuple(sorted(after)), length))),
                ):
                    n, least = moved([e for e in b if e[1] > 0], [e for e in c if e[1] > 0], length)
                    if least:
                        ratios[key].append(n / least)
            cells = [f"{statistics.median(r):>7.2f} {max(r):>7.2f}" if r else f"{'-':>15}" for r in ratios.values()]
            print(f"  {name:<18} {length:>7} {change:<8} " + " ".join(f"{c:>16}" for c in cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    fills(args.repeat)
    fidelity_and_disruption()


if __name__ == "__main__":
    main()
