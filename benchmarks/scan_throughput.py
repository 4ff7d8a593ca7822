"""Scan throughput: ``msdbg check`` over a real MindSpore dump of >= 1 GB vs a bare NumPy loop over the same files.

    python benchmarks/scan_throughput.py [--quick] [--repeat 2] [--layers 2] [--steps 2] [--keep DIR]

1. Makes the dump with plain MindSpore (no msdbg): benchmarks/wide_mlp_dump.py (4096-wide MLP on CPU) run with
   MINDSPORE_DUMP_CONFIG (every iteration, inputs and outputs, tensors), into a temporary directory under /tmp
   (about 1.15 GB per layer-step: 2 layers x 2 steps = 2.3 GB; --quick: 1 step, 1.15 GB). Deleted at the end.
2. Times, each in its own process (interpreter start-up and imports included), --repeat times in turn with the
   page cache warm (the dump was just written; the first round reads it again), best of the rounds:
   - baseline: a bare loop that memory-maps every .npy (np.load(mmap_mode='r')) and takes min and max;
   - baseline, evaluated files only: the same over the files msdbg evaluates (op outputs and parameters);
   - msdbg check DUMP -c "watch tensor_overflow"  (the target's figure);
   - msdbg check DUMP -c "watch recommended";
   - msdbg check on a copy of the dump's graphs with one empty iteration: msdbg's fixed start-up cost
     (Python, NumPy, MindSpore's protobuf module for the graph, reading the graph).
GB/s is the dump's .npy bytes over wall time; the ratio is baseline time / msdbg time (target >= 0.7x).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (BENCH, ROOT, child_env, load_note, msdbg_argv, require_free_space, run_timed,  # noqa: E402
                     tree_bytes, verdict, write_mindspore_dump_config)

TARGET = 0.7
GB_PER_LAYER_STEP = 1.15e9


def baseline_loop(root: str, evaluated_only: bool) -> None:
    """Child-process mode: mmap every .npy under root, take min and max; print bytes, files and loop seconds."""
    import numpy as np

    parse = None
    if evaluated_only:
        sys.path.insert(0, str(ROOT))
        from msdbg.store.filenames import parse_tensor_filename as parse
    start = time.perf_counter()
    total = files = 0
    for folder, _, names in os.walk(root):
        for name in sorted(names):
            if not name.endswith(".npy"):
                continue
            if parse is not None:
                parsed = parse(name)
                if parsed is None or parsed.io != "output":
                    continue
            path = os.path.join(folder, name)
            array = np.load(path, mmap_mode="r")
            if array.size:
                array.min()
                array.max()
            total += os.path.getsize(path)
            files += 1
    print(f"{total} {files} {time.perf_counter() - start:.6f}")


def msdbg_inproc(argv: list[str]) -> int:
    """Child-process mode: ``msdbg ARGV`` in this process, timing its phases; the split goes to stderr.

    msdbg's imports are timed apart, so the command's own time is graph reading plus the scan (MindSpore is not
    imported: msdbg.store.graph loads anf_ir_pb2 from MindSpore's file).
    """
    start = time.perf_counter()
    sys.path.insert(0, str(ROOT))
    from msdbg.cli import main as msdbg_main
    import msdbg.frontends.batch  # noqa: F401  (what 'check' imports)

    imported = time.perf_counter()
    code = msdbg_main(argv)
    done = time.perf_counter()
    sys.stdout.flush()
    print(f"INPROC imports={imported - start:.6f} mindspore={'mindspore' in sys.modules} "
          f"command={done - imported:.6f}", file=sys.stderr)
    return code


def make_dump(scratch: str, steps: int, layers: int) -> str:
    dump = os.path.join(scratch, "dump")
    config = write_mindspore_dump_config(os.path.join(scratch, "dump.json"), dump)
    wall, _ = run_timed([sys.executable, str(BENCH / "wide_mlp_dump.py"), str(steps), "4096", str(layers)],
                        env=child_env(MINDSPORE_DUMP_CONFIG=config))
    size, files = tree_bytes(dump, ".npy")
    print(f"dump: {size / 1e9:.2f} GB in {files} .npy files, {steps} step(s) of a 4096-wide MLP with {layers} "
          f"hidden layer(s), written by plain MindSpore in {wall:.1f} s")
    return dump


def startup_dump(dump: str, scratch: str) -> str:
    """A copy of the dump's graph files and of its smallest float op output, alone in one iteration folder: what msdbg
    pays before the tensors (a step with no tensor checked is not a clean result: exit 2)."""
    tiny = os.path.join(scratch, "startup")
    rank = os.path.join(dump, "rank_0")
    for sub in ("graphs", "execution_order"):
        if os.path.isdir(os.path.join(rank, sub)):
            shutil.copytree(os.path.join(rank, sub), os.path.join(tiny, "rank_0", sub))
    outputs = [os.path.join(root, name) for root, _, names in os.walk(rank) for name in names  # float: watched
               if name.endswith(".npy") and ".output." in name and ".Float" in name and not name.startswith("Parameter.")]
    smallest = min(outputs, key=os.path.getsize)
    folder = os.path.join(tiny, os.path.relpath(os.path.dirname(smallest), dump))
    os.makedirs(folder)
    shutil.copy(smallest, folder)
    return tiny


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 step instead of 2 (a 1.15 GB dump)")
    parser.add_argument("--steps", type=int, default=2, help="training steps dumped (default 2)")
    parser.add_argument("--layers", type=int, default=2, help="4096x4096 hidden layers (default 2)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each measurement, best taken (default 2)")
    parser.add_argument("--keep", metavar="DIR", help="use (and keep) this dump directory instead of a new one")
    parser.add_argument("--baseline-loop", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--evaluated-only", action="store_true", help=argparse.SUPPRESS)
    if sys.argv[1:2] == ["--msdbg-inproc"]:
        raise SystemExit(msdbg_inproc(sys.argv[2:]))
    args = parser.parse_args()
    if args.baseline_loop:
        baseline_loop(args.baseline_loop, args.evaluated_only)
        return
    if args.quick:
        args.steps = 1

    scratch = tempfile.mkdtemp(prefix="msdbg-bench-scan-")
    try:
        if args.keep and os.path.isdir(args.keep):
            dump = args.keep
            print(f"dump: {dump} (existing, kept)")
        else:
            require_free_space(tempfile.gettempdir(), int(GB_PER_LAYER_STEP * args.layers * args.steps * 1.3))
            dump = make_dump(scratch, args.steps, args.layers)
            if args.keep:
                shutil.move(dump, args.keep)
                dump = args.keep
        run(args, dump, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        print(f"removed {scratch}" + (f" (kept {args.keep})" if args.keep else ""))


def run(args: argparse.Namespace, dump: str, scratch: str) -> None:
    size, files = tree_bytes(dump, ".npy")
    gigabytes = size / 1e9
    tiny = startup_dump(dump, scratch)
    me = str(Path(__file__).resolve())
    overflow = ("check", dump, "--nx", "-c", "watch tensor_overflow")
    cases = {
        "baseline (all .npy)": ([sys.executable, me, "--baseline-loop", dump], (0,)),
        "baseline (evaluated files)": ([sys.executable, me, "--baseline-loop", dump, "--evaluated-only"], (0,)),
        "msdbg check tensor_overflow": (msdbg_argv(*overflow), (0, 1)),
        "msdbg check recommended": (msdbg_argv("check", dump, "--nx", "-c", "watch recommended"), (0, 1)),
        "msdbg check, one tiny tensor": (msdbg_argv("check", tiny, "--nx", "-c", "watch tensor_overflow"), (0, 1)),
        "msdbg check tensor_overflow, phases": ([sys.executable, me, "--msdbg-inproc", *overflow], (0, 1)),
    }
    walls: dict[str, list[float]] = {name: [] for name in cases}
    inner: dict[str, list[tuple]] = {}
    outputs: dict[str, str] = {}
    for _ in range(max(args.repeat, 1)):
        for name, (argv, codes) in cases.items():
            wall, done = run_timed(argv, ok_codes=codes)
            walls[name].append(wall)
            outputs[name] = done.stdout
            if name.startswith("baseline"):
                nbytes, nfiles, seconds = done.stdout.split()
                inner.setdefault(name, []).append((float(seconds), int(nbytes), int(nfiles)))
            if name.endswith("phases"):
                line = next(l for l in done.stderr.splitlines() if l.startswith("INPROC "))
                phases = dict(item.split("=") for item in line.split()[1:])
                inner.setdefault(name, []).append((float(phases["command"]), float(phases["imports"]),
                                                   phases["mindspore"]))

    print(f"every figure is the best of {max(args.repeat, 1)} runs with the page cache warm; GB/s = the dump's "
          f"{gigabytes:.2f} GB / wall time of the process; {load_note()}")
    base = min(walls["baseline (all .npy)"])
    print(f"{'':36} {'wall':>8} {'GB/s':>7} {'vs baseline':>12}")
    for name in cases:
        wall = min(walls[name])
        note = ""
        if name.startswith("baseline"):
            seconds, nbytes, nfiles = min(inner[name])
            note = f"  {nbytes / 1e9:.2f} GB in {nfiles} files; the loop alone: {seconds:.2f} s, " \
                   f"{nbytes / 1e9 / seconds:.2f} GB/s"
        elif name.endswith("phases"):
            continue
        elif outputs[name]:
            note = "  " + outputs[name].splitlines()[0]
        print(f"{name:<36} {wall:7.2f}s {gigabytes / wall:7.2f} {base / wall:11.2f}x{note}")
    command, imports, mindspore = min(inner["msdbg check tensor_overflow, phases"])
    loop = min(inner["baseline (all .npy)"])[0]
    print(f"msdbg check tensor_overflow in phases (in one process): msdbg+NumPy imports {imports:.2f} s, "
          f"MindSpore imported: {mindspore}, the check itself {command:.2f} s = "
          f"{gigabytes / command:.2f} GB/s, {loop / command:.2f}x of the bare loop's {gigabytes / loop:.2f} GB/s")
    for name in ("msdbg check tensor_overflow", "msdbg check recommended"):
        wall = min(walls[name])
        print(f"scan throughput ({name[12:]})  baseline {gigabytes / base:.2f} GB/s  msdbg {gigabytes / wall:.2f} GB/s"
              f"  {base / wall:.2f}x  {verdict(base / wall, TARGET, higher_is_better=True)}")


if __name__ == "__main__":
    main()
