"""Throughput of msdbg.engine.stats.compute_stats against plain NumPy on a large float32 array.

    python benchmarks/stats_throughput.py [--mb 256] [--repeat 7] [--chunk 65536]

Every figure is the best of --repeat runs, as GB/s of the array's bytes and as a ratio to one np.add.reduce
over the whole float32 array measured in the same run (the cheapest full pass NumPy offers). The float16 and
bfloat16 cases read an array of the same number of bytes (twice the elements): "per byte" against the same
baseline. compute_stats uses the compiled kernel when it is built; MSDBG_NO_CEXT=1 measures the NumPy fallback.
Where the kernel has its AVX2 + F16C loop for 2-byte floats, the portable loop is timed beside it (no target).
(h): the overflow check with weight_frozen's digest of the bytes in the same pass, beside the separate zlib.crc32
pass it replaced (no target).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from msdbg.engine.stats import CHUNK_ELEMENTS, KERNEL, compute_stats  # noqa: E402

FULL = ("min", "max", "sum", "abs_sum", "sq_sum", "zero", "neg", "pos", "nan", "pos_inf", "neg_inf", "finite_count")
OVERFLOW_TARGET, FULL_TARGET = 1.0, 0.6


def best_times(cases: list[tuple[str, Callable[[], object]]], repeat: int) -> dict[str, float]:
    """Best wall time of each case; the cases take turns, so a noisy spell hits them all alike."""
    times: dict[str, list[float]] = {name: [] for name, _ in cases}
    for _ in range(repeat):
        for name, run in cases:
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: min(spent) for name, spent in times.items()}


def naive_overflow(arr: np.ndarray) -> bool:
    return bool(np.isnan(arr).any() or np.isinf(arr).any())


def naive_full(arr: np.ndarray) -> tuple:
    return (arr.min(), arr.max(), arr.sum(), np.abs(arr).sum(), (arr * arr).sum(), np.count_nonzero(arr == 0),
            np.count_nonzero(arr < 0), np.count_nonzero(arr > 0), np.isnan(arr).sum(), np.isinf(arr).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256, help="array size in MB (default 256)")
    parser.add_argument("--repeat", type=int, default=7, help="best of this many runs (default 7, at least 5)")
    parser.add_argument("--chunk", type=int, default=CHUNK_ELEMENTS, help="compute_stats chunk_elements")
    args = parser.parse_args()
    repeat = max(args.repeat, 5)

    arr = np.random.default_rng(0).standard_normal(args.mb * 2**20 // 4, dtype=np.float32)
    gigabytes = arr.nbytes / 1e9
    chunk = args.chunk
    wide_half = np.random.default_rng(1).standard_normal(arr.size * 2, dtype=np.float32)
    half = wide_half.astype(np.float16)
    bfloat = (wide_half.view(np.uint32) >> 16).astype(np.uint16)  # raw bfloat16 bits, as a dump holds them
    del wide_half
    path = "compiled kernel" if KERNEL is not None else "NumPy fallback (no kernel built, or MSDBG_NO_CEXT set)"
    print(f"{arr.nbytes / 2**20:.0f} MB float32, chunk_elements={chunk}, best of {repeat}, numpy {np.__version__}, "
          f"compute_stats: {path}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tensor.npy"
        np.save(path, arr)
        mapped = np.load(path, mmap_mode="r")
        np.add.reduce(mapped)  # warm the page cache

        cases = [  # (name, run, target ratio or None)
            ("(a) np.add.reduce", lambda: np.add.reduce(arr), None),
            ("(b) naive overflow", lambda: naive_overflow(arr), None),
            ("(c) overflow-only", lambda: compute_stats(arr, {"nonfinite"}, chunk_elements=chunk), OVERFLOW_TARGET),
            ("(d) naive full", lambda: naive_full(arr), None),
            ("(e) full", lambda: compute_stats(arr, FULL, chunk_elements=chunk), FULL_TARGET),
            ("(f) mmap overflow-only", lambda: compute_stats(mapped, {"nonfinite"}, chunk_elements=chunk),
             OVERFLOW_TARGET),
            ("(f) mmap full", lambda: compute_stats(mapped, FULL, chunk_elements=chunk), FULL_TARGET),
            ("(g) float16 overflow-only", lambda: compute_stats(half, {"nonfinite"}, chunk_elements=chunk),
             OVERFLOW_TARGET),
            ("(g) float16 full", lambda: compute_stats(half, FULL, chunk_elements=chunk), FULL_TARGET),
            ("(g) bfloat16 full", lambda: compute_stats(bfloat, FULL, chunk_elements=chunk, dtype_hint="bfloat16"),
             FULL_TARGET),
            ("(h) overflow + digest", lambda: compute_stats(arr, {"nonfinite", "digest"}, chunk_elements=chunk),
             None),
            ("(h) zlib.crc32 alone", lambda: zlib.crc32(arr), None),
        ]
        if KERNEL is not None and KERNEL.WIDE_2BYTE:
            cases.append(("(g) float16 full portable", lambda: KERNEL.reduce(half, "e", 1, -np.inf, np.inf, True),
                          None))
        best = best_times([(name, run) for name, run, _ in cases], repeat)
        baseline = best["(a) np.add.reduce"]
        for name, _, target in cases:
            seconds = best[name]
            ratio = baseline / seconds
            verdict = "" if target is None else f"  (target >= {target:.2f}x: {'met' if ratio >= target else 'MISSED'})"
            print(f"{name:<26} {gigabytes / seconds:6.1f} GB/s  {ratio:5.2f}x of np.add.reduce{verdict}")

        print("(g): a float16/bfloat16 array of the same bytes, against the same float32 np.add.reduce (per byte)")
        if "(g) float16 full portable" in best:
            print("'portable': the kernel's portable 2-byte loop, forced, over the float16 array in one call")
        stats = compute_stats(mapped, FULL, chunk_elements=chunk)
        assert stats.nonfinite_count == 0 and stats.finite_count == arr.size
        assert stats.min == float(arr.min()) and stats.max == float(arr.max())
        # the kernel sums float32 in float32 within blocks (documented error: 1e-5 of the sum of magnitudes)
        assert np.isclose(stats.sum, np.add.reduce(arr, dtype=np.float64), rtol=1e-9, atol=1e-5 * stats.abs_sum)


if __name__ == "__main__":
    main()
