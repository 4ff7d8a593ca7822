"""Compare throughput: `msdbg compare A B` on a >= 1 GB synthetic dump pair against a bare NumPy loop.

The pair is written in MindSpore's dump layout (rank_0/Net/0/0/{Op}.{name}.0.0.{ts}.output.0.DefaultFormat.Float32.npy),
without graph files: big float32 tensors (most of the bytes; B is A plus noise on half of them, equal on the
rest) and many small ones (per-tensor overhead). The baseline loads both sides of each pair with np.load and takes
np.max(np.abs(a - b)); msdbg computes max abs and relative error, cosine similarity and the tolerance test, pairs
the tensors and writes --json. Each runs in its own process with the page cache warm; best of --repeat.
Target: msdbg >= 0.7x the baseline's GB/s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import textwrap

import numpy as np

from _common import load_note, msdbg_argv, require_free_space, run_timed, verdict

TARGET = 0.7
BASELINE = textwrap.dedent("""
    import os, sys
    import numpy as np
    a_root, b_root = sys.argv[1], sys.argv[2]
    folder = os.path.join("rank_0", "Net", "0", "0")
    worst = 0.0
    for name in sorted(os.listdir(os.path.join(a_root, folder))):
        a = np.load(os.path.join(a_root, folder, name))
        b = np.load(os.path.join(b_root, folder, name))
        worst = max(worst, float(np.max(np.abs(a - b))))
    print(worst)
""")


def write_pair(root: str, big: int, big_mb: int, small: int) -> int:
    """Write dump trees A and B under root; return the bytes of both sides together."""
    rng = np.random.default_rng(0)
    total = 0
    folders = [os.path.join(root, side, "rank_0", "Net", "0", "0") for side in "ab"]
    for folder in folders:
        os.makedirs(folder)
    elements = big_mb * (1 << 20) // 4
    for index in range(big + small):
        size = elements if index < big else 1024
        a = rng.standard_normal(size, dtype=np.float32)
        b = a + np.float32(1e-3) * rng.standard_normal(size, dtype=np.float32) if index % 2 else a
        name = f"Add.Default_Add-op{index}.0.0.{1000 + index}.output.0.DefaultFormat.Float32.npy"
        for folder, array in zip(folders, (a, b)):
            np.save(os.path.join(folder, name), array)
            total += os.path.getsize(os.path.join(folder, name))
    return total


def best_wall(argv: list[str], repeat: int, ok_codes: tuple[int, ...]) -> float:
    run_timed(argv, ok_codes=ok_codes)  # warms the page cache
    return min(run_timed(argv, ok_codes=ok_codes)[0] for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--big", type=int, default=10, help="big tensors per side (default 10)")
    parser.add_argument("--big-mb", type=int, default=56, help="MB per big tensor (default 56: 1.17 GB in all)")
    parser.add_argument("--small", type=int, default=300, help="4 KB tensors per side (default 300)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="one timed run each")
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    needed = 2 * args.big * args.big_mb * (1 << 20) * 11 // 10
    require_free_space(tempfile.gettempdir(), needed)
    root = tempfile.mkdtemp(prefix="msdbg-compare-bench-")
    try:
        total = write_pair(root, args.big, args.big_mb, args.small)
        a, b = os.path.join(root, "a"), os.path.join(root, "b")
        print(f"dump pair: {total / 1e9:.2f} GB ({2 * (args.big + args.small)} files); {load_note()}")
        script = os.path.join(root, "baseline.py")
        with open(script, "w", encoding="utf-8") as handle:
            handle.write(BASELINE)
        baseline = best_wall([sys.executable, script, a, b], repeat, (0,))
        report = os.path.join(root, "report.json")
        ours = best_wall(msdbg_argv("compare", a, b, "--json", report), repeat, (1,))
        startup = best_wall(msdbg_argv("--help"), 1, (0,))
        print(f"baseline (np.load both, np.max(np.abs(a - b))): {baseline:.2f} s, {total / baseline / 1e9:.2f} GB/s")
        print(f"msdbg compare (+ pairing, cosine, relative error, tolerance, --json): {ours:.2f} s, "
              f"{total / ours / 1e9:.2f} GB/s (start-up of msdbg alone: {startup:.2f} s)")
        ratio = baseline / ours
        print(f"ratio: {ratio:.2f}x of the baseline's throughput {verdict(ratio, TARGET, higher_is_better=True)}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
