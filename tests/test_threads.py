"""Threads msdbg starts inside the training process keep SIGINT blocked (MindSpore's handler would end it)."""

from __future__ import annotations

import signal

from msdbg.threads import worker


def test_worker_thread_blocks_sigint_and_the_caller_keeps_its_mask():
    before = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    pool = worker("msdbg-test")
    try:
        mask = pool.submit(signal.pthread_sigmask, signal.SIG_BLOCK, set()).result()
    finally:
        pool.shutdown()
    assert signal.SIGINT in mask
    assert signal.pthread_sigmask(signal.SIG_BLOCK, set()) == before


def _step_of_many_tensors(root, count: int) -> None:
    """A hand-written dump step (MindSpore's file-name layout) of ``count`` op outputs: one holds a NaN, one is
    truncated."""
    import numpy as np

    folder = root / "rank_0" / "Net" / "0" / "0"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        values = rng.standard_normal(2000 + 500 * i).astype(np.float32)
        if i == 37:
            values[5] = np.nan
        path = folder / f"Add.Default_Add-op{i}.0.0.{1000 + i}.output.0.DefaultFormat.Float32.npy"
        np.save(path, values)
        if i == 80:
            path.write_bytes(path.read_bytes()[:200])


def test_parallel_reduction_gives_the_serial_results(tmp_path, monkeypatch):
    import msdbg.commands  # noqa: F401  (registers the commands)
    from msdbg.commands.registry import execute
    from msdbg.engine import evaluate
    from msdbg.session import Session
    from msdbg.store.dumpdir import DumpDir

    _step_of_many_tensors(tmp_path, 120)
    outcomes = []
    for limit in (evaluate.PARALLEL_MIN_TENSORS, 10**9):  # 120 tensors: two threads, then one
        monkeypatch.setattr(evaluate, "PARALLEL_MIN_TENSORS", limit)
        session = Session()
        execute(session, "watch recommended")
        session.dump = DumpDir(str(tmp_path))
        (_, result), = session.evaluate_keys(session.dump.steps()[:1])
        outcomes.append(([(h.watchpoint, h.entry.node, h.stats.get("nan")) for h in result.hits], result.errors,
                         result.tensors_checked))
    assert outcomes[0] == outcomes[1]
    hits, errors, checked = outcomes[0]
    assert checked == 119  # the truncated file is reported, not checked
    assert ("Default_Add-op37", 1) in {(node, nan) for _, node, nan in hits}
    assert len(errors) == 1 and "Default_Add-op80" in errors[0] and "truncated" in errors[0]
