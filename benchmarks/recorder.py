"""Flight recorder cost: step time with and without the recording, and its size per 1000 steps of resnet18.

    python benchmarks/recorder.py [--steps 60] [--warmup 10] [--rounds 2] [--replay 1000] [--quick]

1. Step time: benchmarks/lenet_train.py (the overhead benchmark's LeNet) under
   ``msdbg run --batch --nx -c "watch recommended"`` with ``--no-record`` (baseline) and with ``--record`` (the
   default), rounds interleaved; steady-state step time is the median of per-step times after the warm-up steps.
   Target: the recording adds under 5% to the step time.
2. Size: mindcv resnet18 (benchmarks/resnet18_train.py, 32x32 images) trains 2 steps under
   ``msdbg run --batch -c "watch tensor_overflow"`` (every tensor evaluated, so every tensor recorded) with
   ``--record``; its second step's statistics are then written --replay times more through the same Recorder (one
   transaction per step, as during training) into a fresh recording: bytes per 1000 steps of a resnet18-size graph,
   and the recorder's own write time per step.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BENCH, ROOT, child_env, load_note, median, msdbg_argv, run_timed, verdict  # noqa: E402

TARGET = 1.05
_STEP = re.compile(r"^step (\d+) t=([\d.]+)", re.M)


def step_times(stdout: str, warmup: int) -> list[float]:
    stamps = sorted((int(n), float(t)) for n, t in _STEP.findall(stdout))
    times = [stamps[i][1] - stamps[i - 1][1] for i in range(1, len(stamps))]
    if len(times) <= warmup:
        raise SystemExit(f"benchmark: only {len(stamps)} steps printed; need more than --warmup {warmup}")
    return times[warmup:]


def step_cost(args: argparse.Namespace, scratch: str) -> None:
    script = str(BENCH / "lenet_train.py")
    times: dict[str, list[float]] = {"--no-record": [], "--record": []}
    sizes = []
    for round_ in range(args.rounds):
        for variant in times:
            record = os.path.join(scratch, f"lenet-{round_}.msdbg.sqlite")
            extra = ["--record", record] if variant == "--record" else ["--no-record"]
            _, done = run_timed(msdbg_argv("run", "--batch", "--nx", *extra, "-c", "watch recommended", script,
                                           str(args.steps)), env=child_env(MSDBG_RUNS_DIR=scratch), ok_codes=(0, 1))
            times[variant].extend(step_times(done.stdout, args.warmup))
            if variant == "--record":
                sizes.append(os.path.getsize(record))
    base, recorded = median(times["--no-record"]), median(times["--record"])
    ratio = recorded / base
    print(f"LeNet step time, msdbg --no-record {base * 1e3:.1f} ms, --record {recorded * 1e3:.1f} ms: {ratio:.3f}x "
          f"({(recorded - base) * 1e3:+.1f} ms/step) {verdict(ratio, TARGET)}")
    print(f"LeNet recording: {sizes[0] / 1e3:.0f} kB for {args.steps} steps")


def resnet_size(args: argparse.Namespace, scratch: str) -> None:
    sys.path.insert(0, str(ROOT))
    from msdbg.store.recorder import Recorder
    from msdbg.store.recording import Recording

    source = os.path.join(scratch, "resnet18.msdbg.sqlite")
    run_timed(msdbg_argv("run", "--batch", "--nx", "--record", source, "-c", "watch tensor_overflow",
                         str(BENCH / "resnet18_train.py"), "2"), env=child_env(), ok_codes=(0, 1))
    recording = Recording(source)
    key = recording.steps()[-1]
    entries = recording.tensors(key)
    graph = recording.graph(key.rank, key.graph)
    tensors = [(entry, entry.stats) for entry in entries]
    target = os.path.join(scratch, "replay.msdbg.sqlite")
    recorder = Recorder(target, source="replay")
    recorder.record_step(key, training=True, tensors=tensors, hits=[], graph=graph)  # graph and tensor rows
    recorder.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    fixed = os.path.getsize(target)
    start = time.perf_counter()
    for iteration in range(key.iteration + 1, key.iteration + 1 + args.replay):
        recorder.record_step(key.__class__(key.rank, key.net, key.graph, iteration), training=True, tensors=tensors,
                             hits=[], graph=graph)
    elapsed = time.perf_counter() - start
    recorder.finish(0)
    total = os.path.getsize(target)
    per_thousand = (total - fixed) / args.replay * 1000
    print(f"resnet18 (mindcv, 32x32): {len(tensors)} tensors recorded per step; graph and names {fixed / 1e6:.2f} MB "
          f"once, then {per_thousand / 1e6:.1f} MB per 1000 steps ({(total - fixed) / args.replay / 1e3:.1f} kB/step)")
    print(f"recorder write time (one transaction per step): {elapsed / args.replay * 1e3:.2f} ms/step "
          f"for {len(tensors)} tensors")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="LeNet steps per run (default 60)")
    parser.add_argument("--warmup", type=int, default=10, help="steps left out of the median (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each variant (default 2)")
    parser.add_argument("--replay", type=int, default=1000, help="resnet18 steps written for the size (default 1000)")
    parser.add_argument("--quick", action="store_true", help="40 steps, 1 round, 200 replayed steps")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.rounds, args.replay = 40, 1, 200
    print(f"flight recorder benchmark; {load_note()}")
    scratch = tempfile.mkdtemp(prefix="msdbg-bench-recorder-")
    try:
        step_cost(args, scratch)
        resnet_size(args, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
