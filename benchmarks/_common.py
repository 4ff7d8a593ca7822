"""Helpers shared by the benchmarks: running msdbg and scripts in subprocesses, timing, verdict lines."""

from __future__ import annotations

import atexit
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_RUNS = tempfile.mkdtemp(prefix="msdbg-bench-runs-")
atexit.register(shutil.rmtree, _RUNS, True)
BENCH = ROOT / "benchmarks"


def child_env(**extra: str) -> dict[str, str]:
    """Environment for child processes: this checkout first on sys.path, MindSpore's INFO/WARNING logs off, flight
    recordings of msdbg runs in a temporary folder (not ./.msdbg/runs of the checkout), bytecode caches written
    and used as on a user's machine (PYTHONDONTWRITEBYTECODE would make every run compile msdbg: +0.25 s)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), GLOG_v="3",
               MSDBG_RUNS_DIR=_RUNS)
    env.pop("MINDSPORE_DUMP_CONFIG", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(extra)
    return env


def msdbg_argv(*args: str) -> list[str]:
    """``python -m msdbg ARGS`` with this interpreter (the ``msdbg`` console script may not be installed)."""
    return [sys.executable, "-m", "msdbg", *args]


def run_timed(argv: list[str], *, env: dict[str, str] | None = None, timeout: float = 900,
              check: bool = True, ok_codes: tuple[int, ...] = (0,)) -> tuple[float, subprocess.CompletedProcess]:
    """Run a command to completion, capturing its output; return (wall seconds, result)."""
    start = time.perf_counter()
    done = subprocess.run(argv, env=env or child_env(), cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - start
    if check and done.returncode not in ok_codes:
        sys.stderr.write(done.stdout[-3000:] + "\n" + done.stderr[-3000:] + "\n")
        raise SystemExit(f"benchmark: {' '.join(argv[:6])} ... exited {done.returncode}")
    return wall, done


def verdict(value: float, target: float, *, higher_is_better: bool = False, unit: str = "x") -> str:
    """``(target <= 1.25x: met)``."""
    ok = value >= target if higher_is_better else value <= target
    sign = ">=" if higher_is_better else "<="
    return f"(target {sign} {target:g}{unit}: {'met' if ok else 'MISSED'})"


def median(values: list[float]) -> float:
    return statistics.median(values)


def load_note() -> str:
    """The 1/5/15-minute load averages: on a shared 2-core machine a load above ~1 means someone else is busy."""
    one, five, fifteen = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {one:.2f} {five:.2f} {fifteen:.2f}"


def free_bytes(path: str) -> int:
    return shutil.disk_usage(path).free


def require_free_space(path: str, needed: int) -> None:
    free = free_bytes(path)
    print(f"free space under {path}: {free / 1e9:.1f} GB (need about {needed / 1e9:.1f} GB)")
    if free < needed:
        raise SystemExit(f"benchmark: not enough free disk space under {path}")


def tree_bytes(root: str, suffix: str = "") -> tuple[int, int]:
    """(total bytes, file count) of the files under root whose name ends with suffix."""
    total = count = 0
    for folder, _, names in os.walk(root):
        for name in names:
            if name.endswith(suffix):
                total += os.path.getsize(os.path.join(folder, name))
                count += 1
    return total, count


class Pruner:
    """While a training writes a dump, keep only the newest ``keep`` iteration folders of each graph, as msdbg's
    retention does (``--keep-steps``, default 2), and count what was written (``last_sizes``: the .npy sizes of
    the last step folder removed).

    A dump left to grow is not what msdbg runs pay for: resnet18 writes 203 MB a step, and on the 2-core VM its
    steps took about twice as long once /dev/shm held some 2.5 GB of it (benchmarks/dump_cost.py, 2026-12-01).
    """

    def __init__(self, root: str, keep: int = 2, period: float = 0.05):
        self.root, self.keep, self.period = root, keep, period
        self.files = self.bytes = 0
        self.last_sizes: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Pruner":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sweep(keep=0)  # count (and remove) what is left

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self._sweep(self.keep)

    def _sweep(self, keep: int) -> None:
        for graph_dir in (p for p in Path(self.root).glob("rank_*/*/*") if p.is_dir()):
            steps = sorted((p for p in graph_dir.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
            for step in steps[:len(steps) - keep]:
                sizes = [f.stat().st_size for f in step.iterdir() if f.name.endswith(".npy")]
                self.files, self.bytes = self.files + len(sizes), self.bytes + sum(sizes)
                self.last_sizes = sizes or self.last_sizes
                shutil.rmtree(step, ignore_errors=True)


def write_mindspore_dump_config(path: str, dump_root: str, input_output: int = 0) -> str:
    """MindSpore's own e2e dump configuration (what tests/conftest.py uses); no msdbg involved at training."""
    import json

    config = {
        "common_dump_settings": {"dump_mode": 0, "path": os.path.abspath(dump_root), "net_name": "Net",
                                 "iteration": "all", "saved_data": "tensor", "input_output": input_output,
                                 "kernels": [], "support_device": [0, 1, 2, 3, 4, 5, 6, 7]},
        "e2e_dump_settings": {"enable": True, "trans_flag": True},
    }
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(config, handle)
    return path
