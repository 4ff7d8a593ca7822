"""Memory: peak RSS of ``msdbg check`` on a dump holding one 1 GB float32 tensor, above an idle check.

    python benchmarks/memory.py [--gb 1.0] [--repeat 3] [--quick]

Writes two dump trees by hand in MindSpore's layout under a temporary directory in /tmp (removed at the end):
  big:  rank_0/Net/0/0/Add.Default_Add-op0.0.0.{timestamp}.output.0.DefaultFormat.Float32.npy, --gb GB of
        float32 normal values (abs mean 0.8: nothing hits);
  tiny: the same name, 1024 elements.
Then runs ``python -m msdbg check DUMP --nx -c "watch tensor_overflow" -c "watch tensor_too_large abs_mean_gt=1"``
on each, --repeat times in turn (page cache warm: the big file was just written), and takes the median of:
  - peak RSS: ru_maxrss of that child (os.wait4 gives it per child; it includes this process's RSS at the fork,
    about 30 MB, in both runs) and VmHWM, the child's own high-water mark polled from /proc/PID/status;
  - peak anonymous and file-backed RSS: RssAnon / RssFile from /proc/PID/status, polled every 2 ms (the file
    pages of a read-only memory map count in RSS once touched, but they are page cache, not memory the process
    allocated; RssAnon is what it allocates).
The figures are the big check minus the idle (tiny) check; the target is <= 256 MB above idle.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, child_env, load_note, median, msdbg_argv, require_free_space, verdict  # noqa: E402

TARGET_MB = 256
FILE_NAME = "Add.Default_Add-op0.0.0.1700000000000000.output.0.DefaultFormat.Float32.npy"
WATCH = ["-c", "watch tensor_overflow", "-c", "watch tensor_too_large abs_mean_gt=1"]


def write_dump(root: str, elements: int) -> str:
    """One float32 tensor of ``elements`` values in rank_0/Net/0/0, written in 64 MB pieces."""
    folder = os.path.join(root, "rank_0", "Net", "0", "0")
    os.makedirs(folder)
    rng = np.random.default_rng(0)
    array = np.lib.format.open_memmap(os.path.join(folder, FILE_NAME), mode="w+", dtype=np.float32,
                                      shape=(elements,))
    piece = 16 * 2**20
    for start in range(0, elements, piece):
        count = min(piece, elements - start)
        array[start:start + count] = rng.standard_normal(count, dtype=np.float32)
    array.flush()
    del array
    return root


def _status(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon, RssFile, VmHWM of a live process, in kB ({} once it is gone)."""
    values = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM"):
                    values[key] = int(rest.split()[0])
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return {}
    return values


def measure(argv: list[str], out_dir: str) -> dict[str, float]:
    """Run argv; return its peak RSS (ru_maxrss), polled peaks of RssAnon/RssFile (MB), exit code and wall time."""
    with open(os.path.join(out_dir, "stdout"), "w") as out, open(os.path.join(out_dir, "stderr"), "w") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=child_env(), cwd=ROOT, stdout=out, stderr=err)
        peaks = {"RssAnon": 0, "RssFile": 0, "VmRSS": 0, "VmHWM": 0}
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            for key, value in _status(proc.pid).items():
                if key in peaks:
                    peaks[key] = max(peaks[key], value)
            time.sleep(0.002)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        sys.stderr.write(open(os.path.join(out_dir, "stderr")).read()[-3000:])
        raise SystemExit(f"benchmark: {' '.join(argv[:5])} ... exited {proc.returncode}")
    first_line = open(os.path.join(out_dir, "stdout")).readline().strip()
    return {"maxrss": usage.ru_maxrss / 1024, "anon": peaks["RssAnon"] / 1024, "file": peaks["RssFile"] / 1024,
            "polled_rss": peaks["VmRSS"] / 1024, "hwm": peaks["VmHWM"] / 1024, "code": proc.returncode,
            "wall": wall, "summary": first_line}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.0, help="size of the big tensor in GiB (default 1.0)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each check, median taken (default 3)")
    parser.add_argument("--quick", action="store_true", help="2 runs each")
    parser.add_argument("--write", nargs=2, metavar=("ROOT", "ELEMENTS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write:
        write_dump(args.write[0], int(args.write[1]))
        return
    if args.quick:
        args.repeat = 2
    elements = int(args.gb * 2**30) // 4
    scratch = tempfile.mkdtemp(prefix="msdbg-bench-memory-")
    try:
        require_free_space(scratch, elements * 4 + 2**28)
        start = time.perf_counter()
        # Written by a child: a child's ru_maxrss starts from this process's own peak RSS (Linux carries it over
        # fork and exec), so this process must stay small.
        big, tiny = os.path.join(scratch, "big"), os.path.join(scratch, "tiny")
        for root, count in ((big, elements), (tiny, 1024)):
            subprocess.run([sys.executable, __file__, "--write", root, str(count)], check=True)
        print(f"big dump: one float32 tensor of {elements} elements ({elements * 4 / 2**30:.2f} GiB), written in "
              f"{time.perf_counter() - start:.1f} s; tiny dump: 1024 elements")
        runs: dict[str, list[dict]] = {"idle (tiny dump)": [], "1 GB tensor": []}
        for _ in range(args.repeat):
            for name, dump in (("idle (tiny dump)", tiny), ("1 GB tensor", big)):
                runs[name].append(measure(msdbg_argv("check", dump, "--nx", *WATCH), scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"median of {args.repeat} runs each, MB = 2^20 bytes; watchpoints: tensor_overflow, "
          f"tensor_too_large abs_mean_gt=1; {load_note()}")
    print(f"{'':18} {'ru_maxrss':>9} {'VmHWM':>9} {'peak RssAnon':>13} {'peak RssFile':>13} {'wall':>7}   summary")
    figures = {}
    for name, results in runs.items():
        figures[name] = {key: median([r[key] for r in results])
                         for key in ("maxrss", "hwm", "anon", "file", "wall")}
        f = figures[name]
        print(f"{name:18} {f['maxrss']:6.0f} MB {f['hwm']:6.0f} MB {f['anon']:10.0f} MB {f['file']:10.0f} MB "
              f"{f['wall']:6.2f}s   "
              f"{results[-1]['summary']}")
    idle, big = figures["idle (tiny dump)"], figures["1 GB tensor"]
    total = big["maxrss"] - idle["maxrss"]
    anon = big["anon"] - idle["anon"]
    file_backed = big["file"] - idle["file"]
    print(f"peak RSS above idle   idle {idle['maxrss']:.0f} MB  1 GB tensor {big['maxrss']:.0f} MB  "
          f"+{total:.0f} MB  {verdict(total, TARGET_MB, unit=' MB')}")
    print(f"VmHWM above idle      idle {idle['hwm']:.0f} MB  1 GB tensor {big['hwm']:.0f} MB  "
          f"+{big['hwm'] - idle['hwm']:.0f} MB  {verdict(big['hwm'] - idle['hwm'], TARGET_MB, unit=' MB')}")
    print(f"anonymous above idle  idle {idle['anon']:.0f} MB  1 GB tensor {big['anon']:.0f} MB  "
          f"+{anon:.0f} MB  {verdict(anon, TARGET_MB, unit=' MB')}")
    print(f"file-backed above idle (mapped page cache of the tensor file): +{file_backed:.0f} MB")


if __name__ == "__main__":
    main()
