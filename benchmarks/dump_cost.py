"""What MindSpore's own CPU dump costs a training step, and which dump settings change that (issue 17).

    python benchmarks/dump_cost.py [--model mlp|resnet18] [--steps N] [--rounds R] [--warmup W] [--quick]

Runs benchmarks/model_train.py (no msdbg) plain and under MindSpore's e2e dump, variants interleaved round by round:

  plain         no dump
  msdbg         the configuration msdbg writes in batch mode (msdbg.capture.dumpconfig.dump_config, op outputs
                only), in the folder msdbg would use (/dev/shm when it has room)
  trans_flag 0  the same with ``trans_flag: false``
  in+out        inputs and outputs (``input_output: 0``: what the prompt and --dump-dir runs ask for)
  disk          the msdbg configuration with the dump under the temporary directory (disk) instead
  kept all      the msdbg configuration, every step folder kept until the end (not pruned, see below)
  iteration 0   the msdbg configuration with ``iteration: "0"``: dumping switched on, only step 0 written
  no kernel     ``dump_mode: 1`` with a kernel list that names no kernel: the per-kernel check, nothing written

Per variant: steady-state step time (median after --warmup steps) and CPU time per step (the process's, all
threads: the script's ``cpu=`` stamps; steadier than wall time on a shared machine), ratios to plain from the same
run, files and MB written a step. Step folders are pruned to the newest 2 while the training runs, as msdbg
does (``_common.Pruner``), except in ``kept all``. Then the write floor: the files of one dumped step (same sizes, same folder)
written again by this process, so the bytes and the file count alone are timed on this machine.
Not varied: ``file_format`` (read only for Ascend's asynchronous dump; the CPU e2e dump writes .npy regardless),
``saved_data`` (``statistic`` is refused on CPU), ``op_debug_mode`` (overflow and exception modes, not a full dump).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BENCH, Pruner, child_env, load_note, median, run_timed  # noqa: E402
from overhead import dump_parent  # noqa: E402

from msdbg.capture.dumpconfig import DUMP_BOTH, DUMP_OUTPUTS, ENV_VAR, dump_config  # noqa: E402

MODELS = {"mlp": 200, "resnet18": 20}  # default steps
_STAMP = re.compile(r"^step (\d+) t=([\d.]+) cpu=([\d.]+)", re.M)


def variant_config(name: str, root: str) -> dict[str, Any] | None:
    """The dump configuration of a variant (None: plain, no dump)."""
    if name == "plain":
        return None
    config = dump_config(root, input_output=DUMP_BOTH if name == "in+out" else DUMP_OUTPUTS)
    common = config["common_dump_settings"]
    if name == "trans_flag 0":
        config["e2e_dump_settings"]["trans_flag"] = False
    elif name == "iteration 0":
        common["iteration"] = "0"
    elif name == "no kernel":
        common["dump_mode"], common["kernels"] = 1, ["NoKernelHasThisName"]
    return config


VARIANTS = ("plain", "msdbg", "trans_flag 0", "in+out", "disk", "kept all", "iteration 0", "no kernel")


def per_step(stdout: str, warmup: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of each step after the warm-up steps."""
    stamps = sorted((int(n), float(t), float(c)) for n, t, c in _STAMP.findall(stdout))
    if len(stamps) <= warmup + 1:
        raise SystemExit(f"benchmark: only {len(stamps)} steps printed; need more than --warmup {warmup} + 1")
    pairs = list(zip(stamps, stamps[1:]))[warmup:]
    return [b[1] - a[1] for a, b in pairs], [b[2] - a[2] for a, b in pairs]


def write_floor(sizes: list[int], parent: str, repeat: int = 5) -> tuple[float, float]:
    """Best wall and CPU seconds to write files of these sizes into a new folder under parent."""
    data = os.urandom(max(sizes))
    best_wall = best_cpu = float("inf")
    for _ in range(repeat):
        folder = tempfile.mkdtemp(prefix="msdbg-bench-floor-", dir=parent)
        try:
            wall, cpu = time.perf_counter(), time.process_time()
            for i, size in enumerate(sizes):
                with open(os.path.join(folder, f"f{i}.npy"), "wb") as handle:
                    handle.write(memoryview(data)[:size])
            best_wall = min(best_wall, time.perf_counter() - wall)
            best_cpu = min(best_cpu, time.process_time() - cpu)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return best_wall, best_cpu


def run_variant(name: str, args: argparse.Namespace) -> tuple[list[float], list[float], int, int, list[int]]:
    """One training under the variant: per-step wall and CPU, files and bytes per step, one step's file sizes."""
    parent = tempfile.gettempdir() if name == "disk" else dump_parent()
    scratch = tempfile.mkdtemp(prefix="msdbg-bench-dumpcost-", dir=parent)
    try:
        env = child_env()
        config = variant_config(name, os.path.join(scratch, "dump"))
        if config is not None:
            path = os.path.join(scratch, "dump.json")
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(config, handle)
            env = child_env(**{ENV_VAR: path})
        keep = args.steps + 1 if name == "kept all" else 2  # 2: as msdbg's retention does by default
        with Pruner(os.path.join(scratch, "dump"), keep) as pruner:
            _, done = run_timed([sys.executable, str(BENCH / "model_train.py"), args.model, str(args.steps)],
                                env=env)
        walls, cpus = per_step(done.stdout, args.warmup)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return walls, cpus, pruner.files // args.steps, pruner.bytes // args.steps, pruner.last_sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="mlp", help="the training (default mlp)")
    parser.add_argument("--steps", type=int, help="training steps per run (default: mlp 200, resnet18 20)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each variant, interleaved (default 2)")
    parser.add_argument("--warmup", type=int, default=5, help="steps left out of the medians (default 5)")
    parser.add_argument("--quick", action="store_true", help="one round, plain / msdbg / iteration 0 only")
    args = parser.parse_args()
    args.steps = args.steps or MODELS[args.model]
    variants = ("plain", "msdbg", "iteration 0") if args.quick else VARIANTS
    rounds = 1 if args.quick else args.rounds
    print(f"{args.model}, {args.steps} steps, medians after {args.warmup} warm-up steps, {rounds} round(s); "
          f"{load_note()}; dumps under {dump_parent()} (disk: {tempfile.gettempdir()})")
    walls: dict[str, list[float]] = {v: [] for v in variants}
    cpus: dict[str, list[float]] = {v: [] for v in variants}
    written: dict[str, tuple[int, int]] = {}
    sizes: list[int] = []
    for _ in range(rounds):
        for name in variants:
            wall, cpu, files, size, step_sizes = run_variant(name, args)
            walls[name] += wall
            cpus[name] += cpu
            written[name] = files, size
            sizes = sizes or (step_sizes if name == "msdbg" else [])
    base_wall, base_cpu = median(walls["plain"]), median(cpus["plain"])
    print(f"{'':13} {'step wall':>10} {'ratio':>6}   {'step CPU':>10} {'ratio':>6}   {'files/step':>10} {'MB/step':>8}")
    for name in variants:
        wall, cpu = median(walls[name]), median(cpus[name])
        files, size = written[name]
        print(f"{name:13} {wall * 1e3:7.1f} ms {wall / base_wall:5.2f}x   {cpu * 1e3:7.1f} ms {cpu / base_cpu:5.2f}x"
              f"   {files:10d} {size / 1e6:8.2f}")
    floor_wall, floor_cpu = write_floor(sizes, dump_parent())
    extra = median(cpus["msdbg"]) - base_cpu
    print(f"write floor: the {len(sizes)} files ({sum(sizes) / 1e6:.2f} MB) of one msdbg-configuration step written "
          f"by this process under {dump_parent()}: {floor_wall * 1e3:.1f} ms wall, {floor_cpu * 1e3:.1f} ms CPU "
          f"(best of 5); the dump added {extra * 1e3:.1f} ms CPU a step, {extra / len(sizes) * 1e6:.0f} us a file, "
          f"{(extra - floor_cpu) / len(sizes) * 1e6:.0f} us a file above the floor")


if __name__ == "__main__":
    main()
