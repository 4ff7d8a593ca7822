"""``python -m msdbg ARGS`` with msdbg's own work at each step boundary timed (for benchmarks/overhead.py).

    python benchmarks/_timed_msdbg.py run --batch --nx -c "watch recommended" SCRIPT [ARGS...]

Times each call of the barrier's callback: what msdbg holds the training for at a step boundary (listing the
step, and evaluating, reporting and pruning it, or in batch mode waiting for the previous step's evaluation on
its worker thread); not the barrier's wait for MindSpore's dump (the executor sync before it), not MindSpore's
dump writing. Also times each step's evaluation itself (Session.evaluate_user_step), wherever it runs. At exit prints
to stderr ``own work: N steps, median M ms, mean A ms, cpu median C ms, tensors per step T; evaluation median
E ms, cpu median EC ms`` (C: the main thread's CPU time in the callback, T: files in a user step's folders, EC:
CPU time of the evaluating thread plus the part of a large step read and reduced on the second evaluation thread).
"""

import atexit
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from msdbg import cli  # noqa: E402
from msdbg.capture import barrier  # noqa: E402
from msdbg.engine import evaluate  # noqa: E402
from msdbg.session import Session  # noqa: E402

spent: list[float] = []
cpu: list[float] = []  # this thread's CPU time in the callback: what msdbg's work costs, whatever else runs
evaluated: list[float] = []  # evaluating one step (listing, reading, statistics, judging), wherever it runs
evaluated_cpu: list[float] = []
files: list[int] = []
install, evaluate_user_step, open_part = barrier.install, Session.evaluate_user_step, evaluate._open_part
helper_cpu = [0.0]  # CPU of _open_part on threads other than the evaluating one (evaluate.PARALLEL_MIN_TENSORS)
evaluating: list[int] = []  # the evaluating thread's ident, while it evaluates


def timed_install(on_graph_run, before_first_compile=None):
    def timed() -> None:
        start, start_cpu = time.perf_counter(), time.thread_time()
        try:
            on_graph_run()
        finally:
            spent.append(time.perf_counter() - start)
            cpu.append(time.thread_time() - start_cpu)

    return install(timed, before_first_compile)


def counting_open_part(jobs):
    if evaluating and threading.get_ident() != evaluating[0]:
        start_cpu = time.thread_time()
        try:
            return open_part(jobs)
        finally:
            helper_cpu[0] += time.thread_time() - start_cpu
    return open_part(jobs)


def counting_evaluate_user_step(self, keys):
    start, start_cpu, helped = time.perf_counter(), time.thread_time(), helper_cpu[0]
    evaluating[:] = [threading.get_ident()]
    result = evaluate_user_step(self, keys)
    evaluated.append(time.perf_counter() - start)
    evaluated_cpu.append(time.thread_time() - start_cpu + helper_cpu[0] - helped)
    files.append(sum(len(self.dump.tensors(key)) for key in keys))
    return result


def report() -> None:
    if spent:
        print(f"own work: {len(spent)} steps, median {statistics.median(spent) * 1e3:.2f} ms, mean "
              f"{statistics.mean(spent) * 1e3:.2f} ms, cpu median {statistics.median(cpu) * 1e3:.2f} ms, "
              f"tensors per step {statistics.median(files or [0]):.0f}; evaluation median "
              f"{statistics.median(evaluated or [0]) * 1e3:.2f} ms, cpu median "
              f"{statistics.median(evaluated_cpu or [0]) * 1e3:.2f} ms", file=sys.stderr, flush=True)


barrier.install, Session.evaluate_user_step = timed_install, counting_evaluate_user_step
evaluate._open_part = counting_open_part
atexit.register(report)
sys.exit(cli.main(sys.argv[1:]))
