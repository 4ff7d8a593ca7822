"""Training overhead: the same CPU training plain vs under ``msdbg run --batch -c "watch recommended"``.

    python benchmarks/overhead.py [--model lenet|mlp|resnet18] [--steps N] [--dump-steps N] [--warmup 10]
                                  [--rounds 1] [--quick] [--no-dump-only] [--profile OUT.prof]

The training (--model) is benchmarks/lenet_train.py (lenet: LeNet-5 size convnet, batch 32, synthetic data,
@ms.jit loop, 100 steps) or benchmarks/model_train.py under Model.train (mlp: 8-32-2 MLP, batch 16, 480 steps;
resnet18: mindcv resnet18, 32x32 images, batch 16, 30 steps); each prints a perf_counter timestamp after every
step. Each round runs, in this order:

  plain       python benchmarks/lenet_train.py STEPS
  dump only   the same with MindSpore's own dump switched on (MINDSPORE_DUMP_CONFIG, the configuration msdbg
              writes: every iteration, op outputs, tensors) -- what MindSpore costs, without msdbg; the step
              folders are pruned to the newest 2 as msdbg does (_common.Pruner: a dump left to grow on /dev/shm
              slowed resnet18 steps about 2x); --dump-steps steps (default 40): only its step time is used
  dump+sync   the same dump, run through benchmarks/_barrier_only.py: msdbg's step barrier installed (the
              executor is synchronised after every step, so the step waits until its dump is written) but
              nothing evaluated; --dump-steps steps
  msdbg       python -m msdbg run --batch --nx -c "watch recommended" SCRIPT STEPS, through
              benchmarks/_timed_msdbg.py, which also times msdbg's own work at each step boundary (listing,
              evaluating, pruning the step folder; not the wait for MindSpore's dump, not its writing)

Figures: total wall time of the process (start to exit, imports and compile included) and steady-state step
time (median of the per-step times after --warmup steps; with several rounds, the median of all of them).
Ratios are against plain from the same run; the targets are <= 1.25x (lenet, resnet18) and <= 1.6x (mlp, where
MindSpore's dump alone costs 2-3x: benchmarks/dump_cost.py). msdbg's own work per step is printed apart, wall and
CPU time, with its target: <= 2 ms for the MLP's ~30-tensor step, <= 25 ms for resnet18's ~700-tensor step. "dump only" and "dump+sync" split msdbg's
step-time overhead into MindSpore's dump writing, waiting for it at the step barrier, and msdbg's own work
(listing, evaluating and pruning the step folder).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (BENCH, Pruner, child_env, median, require_free_space, run_timed,  # noqa: E402
                     load_note, verdict, write_mindspore_dump_config)

# model -> (command line after the interpreter, default steps, overhead target, own-work target in ms or None)
MODELS = {
    "lenet": ([str(BENCH / "lenet_train.py")], 100, 1.25, None),
    "mlp": ([str(BENCH / "model_train.py"), "mlp"], 480, 1.6, 2.0),
    "resnet18": ([str(BENCH / "model_train.py"), "resnet18"], 30, 1.25, 25.0),
}
_OWN = re.compile(r"^own work: (\d+) steps, median ([\d.]+) ms, mean ([\d.]+) ms, cpu median ([\d.]+) ms, "
                  r"tensors per step (\d+); evaluation median ([\d.]+) ms, cpu median ([\d.]+) ms", re.M)
_STEP = re.compile(r"^step (\d+) t=([\d.]+)", re.M)
_START = re.compile(r"^start t=([\d.]+)", re.M)


def step_times(stdout: str, warmup: int) -> tuple[list[float], float]:
    """Per-step times after the warm-up steps, and the training loop's time (first step start to last end)."""
    start = float(_START.search(stdout)[1])
    stamps = [(int(n), float(t)) for n, t in _STEP.findall(stdout)]
    stamps.sort()
    times = [stamps[i][1] - stamps[i - 1][1] for i in range(1, len(stamps))]
    if len(times) <= warmup:
        raise SystemExit(f"benchmark: only {len(stamps)} steps printed; need more than --warmup {warmup}")
    return times[warmup:], stamps[-1][1] - start


def dump_parent() -> str:
    """Where msdbg's own dump goes by default (``/dev/shm`` when it has room, see msdbg/capture/fastdump.py), so
    the dump-only runs write to the same kind of file system as the msdbg run."""
    sys.path.insert(0, str(BENCH.parent))
    from msdbg.capture import fastdump

    parent = os.environ.get(fastdump.FAST_DIR_ENV, fastdump.DEFAULT_FAST_DIR)
    if parent and os.path.isdir(parent) and fastdump.free_bytes(parent) >= 2 * fastdump.min_free_bytes():
        return parent
    return tempfile.gettempdir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="lenet", help="the training (default lenet)")
    parser.add_argument("--steps", type=int, help="training steps per run (default: the model's, see above)")
    parser.add_argument("--dump-steps", type=int,
                        help="steps of the dump-only runs (default: 40 for lenet, else --steps)")
    parser.add_argument("--warmup", type=int, default=10, help="steps left out of the step-time median (default 10)")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each variant (default 1)")
    parser.add_argument("--quick", action="store_true", help="50 steps, no dump-only run (about 1 minute)")
    parser.add_argument("--no-dump-only", action="store_true", help="skip the dump only and dump+sync runs")
    parser.add_argument("--profile", metavar="OUT.prof",
                        help="also run msdbg once under cProfile, save the profile and print its top entries")
    args = parser.parse_args()
    script, default_steps, target, own_target = MODELS[args.model]
    args.steps = args.steps or default_steps
    if args.quick:
        args.steps, args.no_dump_only = max(args.warmup + 10, args.steps // 2), True
    args.dump_steps = args.dump_steps or (40 if args.model == "lenet" else args.steps)
    require_free_space(tempfile.gettempdir(), 2 * 10**9)

    variants = ["plain"] + ([] if args.no_dump_only else ["dump only", "dump+sync"]) + ["msdbg"]
    walls: dict[str, list[float]] = {v: [] for v in variants}
    steps: dict[str, list[float]] = {v: [] for v in variants}
    loops: dict[str, list[float]] = {v: [] for v in variants}
    dump_sizes: list[tuple[int, int]] = []
    own: list[tuple[float, ...]] = []
    print(f"{args.model}, {args.steps} steps, step median after {args.warmup} warm-up steps, "
          f"{args.rounds} round(s); {load_note()}; dumps under {dump_parent()}")
    for _ in range(args.rounds):
        for variant in variants:
            scratch = tempfile.mkdtemp(prefix="msdbg-bench-overhead-", dir=dump_parent())
            try:
                env, argv, codes = child_env(), [sys.executable, *script, str(args.steps)], (0,)
                if variant in ("dump only", "dump+sync"):
                    argv = [sys.executable, *script, str(args.dump_steps)]
                    if variant == "dump+sync":
                        argv.insert(1, str(BENCH / "_barrier_only.py"))
                    # op outputs only, as msdbg run --batch asks for on a dump it owns
                    config = write_mindspore_dump_config(os.path.join(scratch, "dump.json"),
                                                         os.path.join(scratch, "dump"), input_output=2)
                    env = child_env(MINDSPORE_DUMP_CONFIG=config)
                elif variant == "msdbg":
                    argv = [sys.executable, str(BENCH / "_timed_msdbg.py"), "run", "--batch", "--nx", "-c",
                            "watch recommended", *script, str(args.steps)]
                    codes = (0, 1)  # 1: a recommended watchpoint hit (reported below), still a valid timing
                with Pruner(os.path.join(scratch, "dump")) as pruner:  # msdbg prunes its own dump alike
                    wall, done = run_timed(argv, env=env, ok_codes=codes)
                if variant == "msdbg" and done.returncode == 1:
                    print("  note: msdbg reported hits: " + done.stdout.splitlines()[-1][:200])
                if variant == "msdbg" and (found := _OWN.search(done.stderr)):
                    own.append(tuple(float(x) for x in found.groups()))
                if variant == "dump only":
                    dump_sizes.append((pruner.bytes, pruner.files))
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            per_step, loop = step_times(done.stdout, args.warmup)
            walls[variant].append(wall)
            steps[variant].extend(per_step)
            loops[variant].append(loop)

    base_wall, base_step = min(walls["plain"]), median(steps["plain"])
    print(f"{'':10} {'total wall':>11} {'ratio':>7}   {'step median':>11} {'ratio':>7}   {'step mean':>9}   "
          f"{'loop':>7}")
    for variant in variants:
        wall, step = min(walls[variant]), median(steps[variant])
        mean = sum(steps[variant]) / len(steps[variant])
        if variant in ("dump only", "dump+sync") and args.dump_steps != args.steps:  # shorter: no wall figure
            print(f"{variant:10} {'-':>11} {'-':>7}   {step * 1e3:8.1f} ms {step / base_step:6.2f}x   "
                  f"{mean * 1e3:6.1f} ms   {'-':>7}  ({args.dump_steps} steps)")
            continue
        print(f"{variant:10} {wall:10.2f}s {wall / base_wall:6.2f}x   {step * 1e3:8.1f} ms {step / base_step:6.2f}x   "
              f"{mean * 1e3:6.1f} ms   {min(loops[variant]):6.2f}s")
    wall_ratio = min(walls["msdbg"]) / base_wall
    step_ratio = median(steps["msdbg"]) / base_step
    print(f"total wall  plain {base_wall:.2f} s  msdbg {min(walls['msdbg']):.2f} s  {wall_ratio:.2f}x  "
          f"{verdict(wall_ratio, target)}")
    print(f"step time   plain {base_step * 1e3:.1f} ms  msdbg {median(steps['msdbg']) * 1e3:.1f} ms  "
          f"{step_ratio:.2f}x  {verdict(step_ratio, target)}")
    if own:
        wall_ms, cpu_ms, tensors = median([o[1] for o in own]), median([o[3] for o in own]), int(own[0][4])
        eval_ms, eval_cpu_ms = median([o[5] for o in own]), median([o[6] for o in own])
        check = f"  {verdict(wall_ms, own_target, unit=' ms')}" if own_target is not None else ""
        print(f"msdbg's own work per step ({tensors} tensors a step; not the wait for MindSpore's dump, not its "
              f"writing): the training held {wall_ms:.2f} ms (median; {cpu_ms:.2f} ms CPU){check}")
        check = f"  {verdict(eval_cpu_ms, own_target, unit=' ms')}" if own_target is not None else ""
        print(f"  evaluating a step (on a worker thread in batch mode, beside the next step): median {eval_ms:.2f} ms"
              f" wall, {eval_cpu_ms:.2f} ms CPU (its threads){check}")
    if "dump only" in variants:
        dumped, synced = median(steps["dump only"]), median(steps["dump+sync"])
        size, files = dump_sizes[0]
        print(f"split of the step-time overhead ({(median(steps['msdbg']) - base_step) * 1e3:+.1f} ms/step): "
              f"MindSpore dump writing {(dumped - base_step) * 1e3:+.1f}, waiting for it at the barrier "
              f"{(synced - dumped) * 1e3:+.1f}, msdbg's own work {(median(steps['msdbg']) - synced) * 1e3:+.1f} "
              f"ms/step")
        print(f"dump only wrote {size / 1e6:.0f} MB in {files} .npy files "
              f"({size / 1e6 / args.dump_steps:.2f} MB, {files // args.dump_steps} files per step)")
    if args.profile:
        profile(args)


def profile(args: argparse.Namespace) -> None:
    """One more msdbg run under cProfile; print where msdbg's own time goes."""
    import pstats

    scratch = tempfile.mkdtemp(prefix="msdbg-bench-overhead-")
    try:
        argv = [sys.executable, "-m", "cProfile", "-o", args.profile, "-m", "msdbg", "run", "--batch", "--nx",
                "-c", "watch recommended", "--dump-dir", os.path.join(scratch, "dump"), *MODELS[args.model][0],
                str(args.steps)]
        wall, _ = run_timed(argv, ok_codes=(0, 1))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"\nprofile of one msdbg run ({wall:.1f} s under cProfile), saved to {args.profile}; top by cumulative:")
    stats = pstats.Stats(args.profile)
    stats.sort_stats("cumulative").print_stats(r"msdbg|numpy|posix|shutil", 25)


if __name__ == "__main__":
    main()
