"""PyNative capture overhead: the same PyNative training plain vs under msdbg, in one run.

    python benchmarks/pynative_overhead.py [--steps 60] [--warmup 10]

The training is benchmarks/lenet_train.py in PyNative mode (LeNet-5 size convnet, batch 32, value_and_grad +
nn.Momentum, no set_context, no @ms.jit), which prints a timestamp after every step. Runs, in this order:

  plain            python benchmarks/lenet_train.py STEPS 32 pynative
  msdbg loaded     msdbg run --batch --no-pynative (graph capture and the PyNative step counter only)
  msdbg overflow   msdbg run --batch -c "watch tensor_overflow"  (every op output, gradient, weight and state)
  msdbg recommended  msdbg run --batch -c "watch recommended"

Figure: steady-state step time (median of the per-step times after --warmup steps), as a ratio to plain from the
same run. For reference (msprobe's documentation): its PyNative L1 statistics dump costs 2-4x with the tool merely
loaded and about 11x dumping. Target here: <= 2x recording and checking every tensor.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BENCH, load_note, median, msdbg_argv, run_timed, verdict  # noqa: E402
from overhead import step_times  # noqa: E402

TARGET = 2.0
SCRIPT = str(BENCH / "lenet_train.py")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    train = [SCRIPT, str(args.steps), "32", "pynative"]
    runs = {
        "plain": [sys.executable, *train],
        "msdbg loaded": msdbg_argv("run", "--batch", "--nx", "--no-pynative", *train),
        "msdbg overflow": msdbg_argv("run", "--batch", "--nx", "-c", "watch tensor_overflow", *train),
        "msdbg recommended": msdbg_argv("run", "--batch", "--nx", "-c", "watch recommended", *train),
    }
    print(load_note())
    base = None
    for label, argv in runs.items():
        # --no-pynative records nothing, so it exits 2 (no training step captured): that is expected here
        wall, done = run_timed(argv, ok_codes=(0, 2) if label == "msdbg loaded" else (0,))
        times, _ = step_times(done.stdout, args.warmup)
        step = median(times)
        base = base or step
        ratio = step / base
        note = "" if label in ("plain", "msdbg loaded") else " " + verdict(ratio, TARGET)
        print(f"{label:18s} step {step * 1e3:8.2f} ms  {ratio:5.2f}x plain  (process {wall:6.1f} s){note}")


if __name__ == "__main__":
    main()
