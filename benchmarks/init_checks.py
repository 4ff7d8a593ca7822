"""Cost of the initial-weight checks weight_symmetric and weight_init_scale, against the pass that
weight_initialization (all-zero weights) already makes, on resnet18-size and wide-Dense weights.

    python benchmarks/init_checks.py [--repeat 7]

CPU time of this thread (time.thread_time, best of --repeat; the machine is shared), in the same run:
baseline: compute_stats with weight_initialization's needs (zero and NaN/Inf counts) on the weight;
with both new checks: the one pass evaluate.py makes for all three (their needs together: sums and identical_rows
too), on a random weight (the row comparison stops after two rows) and on a constant one (every row compared: its
worst case); the row comparison alone as well. All of it runs once per weight, at the first training step only.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import load_note, verdict  # noqa: E402
from msdbg.engine.conditions import CONDITIONS  # noqa: E402
from msdbg.engine.initweights import rows_identical  # noqa: E402
from msdbg.engine.stats import KERNEL, compute_stats  # noqa: E402

SHAPES = {"conv 512x512x3x3": (512, 512, 3, 3), "dense 4096x1024": (4096, 1024)}
ALL_TARGET, RANDOM_ROWS_TARGET, CONSTANT_ROWS_TARGET = 3.0, 0.05, 1.5  # rows: ~10 us a random weight


def needs_of(*names: str) -> frozenset[str]:
    return frozenset().union(*(CONDITIONS[n].stat_needs(CONDITIONS[n].defaults({"zero_percentage_ge": 100.0}
                                                                                 if n == "weight_initialization"
                                                                                 else {}))
                               for n in names))


def cpu_best(run, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.thread_time()
        run()
        best = min(best, time.thread_time() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"{load_note()}; statistics by the {'compiled kernel' if KERNEL else 'NumPy fallback'}")
    zero_only = needs_of("weight_initialization")
    together = needs_of("weight_initialization", "weight_symmetric", "weight_init_scale")
    rng = np.random.default_rng(0)
    for label, shape in SHAPES.items():
        weights = {"random": rng.normal(scale=0.02, size=shape).astype(np.float32),
                   "constant": np.full(shape, 0.1, np.float32)}
        base = cpu_best(lambda: compute_stats(weights["random"], zero_only), args.repeat)
        print(f"{label} ({np.prod(shape) * 4 / 2**20:.0f} MB): weight_initialization's pass {base * 1e3:.2f} ms CPU")
        for kind, weight in weights.items():
            spent = cpu_best(lambda: compute_stats(weight, together), args.repeat)
            print(f"  all three initial checks, {kind} weight: {spent * 1e3:.3f} ms = {spent / base:.2f}x "
                  f"{verdict(spent / base, ALL_TARGET if kind == 'random' else ALL_TARGET + CONSTANT_ROWS_TARGET)}")
            rows = cpu_best(lambda: rows_identical(weight), args.repeat)
            target = RANDOM_ROWS_TARGET if kind == "random" else CONSTANT_ROWS_TARGET
            print(f"    of which the row comparison: {rows * 1e3:.3f} ms = {rows / base:.3f}x {verdict(rows / base, target)}")


if __name__ == "__main__":
    main()
