"""Evaluation does each piece of work once: a tensor file is read once per step, and which watchpoints watch a
tensor is worked out once and kept only while the watchpoints stay the same."""

from __future__ import annotations

from collections import Counter

import numpy as np

import msdbg.commands  # noqa: F401  (registers the commands)
from conftest import SCRIPTS, plain_mindspore_dump
from msdbg.commands.registry import execute
from msdbg.engine import stats
from msdbg.engine.data import label_inputs
from msdbg.session import Session
from msdbg.store import npyfile
from msdbg.store.dumpdir import DumpDir


def _count_reads(monkeypatch) -> Counter[str]:
    """Tensor file reads from now on, by path: NumPy's, and the compiled kernel's batch reads."""
    reads: Counter[str] = Counter()
    read = npyfile._read

    def counting(path: str):
        reads[path] += 1
        return read(path)

    monkeypatch.setattr(npyfile, "_read", counting)
    if stats.KERNEL is not None:
        monkeypatch.setattr(stats, "KERNEL", _CountingKernel(stats.KERNEL, reads))
    return reads


class _CountingKernel:
    """The compiled kernel, counting the files its batch call reads."""

    def __init__(self, kernel, reads: Counter[str]):
        self.kernel, self.reads = kernel, reads

    def __getattr__(self, name: str):
        return getattr(self.kernel, name)

    def reduce_files(self, jobs: list[tuple]) -> list:
        self.reads.update(job[0] for job in jobs)
        return self.kernel.reduce_files(jobs)


def test_a_real_step_reads_each_evaluated_tensor_file_once(jit_nan_dump, monkeypatch):
    reads = _count_reads(monkeypatch)
    session = Session(dump=DumpDir(str(jit_nan_dump)))
    execute(session, "watch recommended")
    key = session.dump.steps()[-1]
    entries = session.dump.tensors(key)
    reads.clear()  # placing the step's kernels in the graph reads some headers first: that is the listing's
    (_, result), = session.evaluate_keys([key])
    float_outputs = [e.path for e in entries if e.io == "output" and e.dtype.startswith("float")]
    assert result.tensors_checked == len(float_outputs) > 10
    assert {path: reads[path] for path in float_outputs} == dict.fromkeys(float_outputs, 1)


def test_a_label_tensor_is_read_once_by_the_evaluation_and_the_label_checks(tmp_path, monkeypatch):
    dump = plain_mindspore_dump(SCRIPTS / "checklist.py", tmp_path / "dump", "healthy", "model", "3")
    reads = _count_reads(monkeypatch)
    session = Session(dump=DumpDir(str(dump)))
    execute(session, "watch recommended")  # input_too_large reads the labels too, beside the three label checks
    key = session.dump.steps()[-1]
    labels = label_inputs(session.dump.graph_of(key))
    label_paths = [e.path for e in session.dump.tensors(key) if e.category == "input" and e.param in labels]
    reads.clear()
    session.evaluate_keys([key])
    assert len(label_paths) == 1
    assert reads[label_paths[0]] == 1
    assert max(reads.values()) == 1


def _steps(root, iterations: int) -> None:
    """Hand-written steps in MindSpore's file-name layout: a weight-like Add output holding a NaN and a finite
    Mul output."""
    for iteration in range(iterations):
        folder = root / "rank_0" / "Net" / "0" / str(iteration)
        folder.mkdir(parents=True)
        np.save(folder / "Add.Default_Add-op0.0.0.100.output.0.DefaultFormat.Float32.npy",
                np.array([1.0, np.nan], np.float32))
        np.save(folder / "Mul.Default_Mul-op1.0.0.200.output.0.DefaultFormat.Float32.npy",
                np.array([1.0, 2.0], np.float32))


def test_watchpoints_changed_between_steps_are_followed(tmp_path):
    _steps(tmp_path, 4)
    session = Session(dump=DumpDir(str(tmp_path)))
    execute(session, "watch tensor_overflow")
    keys = session.dump.steps()

    def evaluate(index: int) -> tuple[int, list[tuple[int, str]]]:
        (_, result), = session.evaluate_keys([keys[index]])
        return result.tensors_checked, sorted((h.watchpoint, h.entry.node) for h in result.hits)

    assert evaluate(0) == (2, [(1, "Default_Add-op0")])
    execute(session, "disable 1")
    assert evaluate(1) == (0, [])
    execute(session, "enable 1")
    execute(session, "watch tensor_too_large max_gt=1.5 on *Mul*")
    assert evaluate(2) == (2, [(1, "Default_Add-op0"), (2, "Default_Mul-op1")])
    execute(session, "delete 1")
    assert evaluate(3) == (1, [(2, "Default_Mul-op1")])


def _evaluation(dump, batch_read: bool, monkeypatch) -> list:
    """Every step of a dump under `watch recommended`, recorded: (hits, each tensor's statistics) per step."""
    from msdbg.engine import evaluate
    from msdbg.engine.stats import SUMMARY_NEEDS
    from msdbg.engine.evaluate import StepContext, evaluate_step

    with monkeypatch.context() as patch:
        if not batch_read:
            patch.setattr(evaluate, "file_stats", lambda files: [None] * len(files))
        session = Session(dump=DumpDir(str(dump)))
        execute(session, "watch recommended")
        outcome = []
        for index, key in enumerate(session.dump.steps()):
            result = evaluate_step(session.dump.tensors(key), session.watchpoints.active(), session.dump.graph_of(key),
                                   session.history, StepContext(index == 0), SUMMARY_NEEDS)
            outcome.append((sorted((h.watchpoint, h.entry.label, repr(h.stats)) for h in result.hits),
                            sorted((e.label, repr(s.as_dict())) for e, s in result.recorded), result.errors))
    return outcome


def test_the_kernels_batch_read_and_numpys_read_evaluate_a_real_dump_alike(jit_nan_dump, monkeypatch):
    reads = _count_reads(monkeypatch) if stats.KERNEL is not None else None
    batched = _evaluation(jit_nan_dump, True, monkeypatch)
    if reads is not None:
        assert len(reads) > 10  # the kernel did read the files
    assert batched == _evaluation(jit_nan_dump, False, monkeypatch)
    assert any(hits for hits, _, _ in batched) and all(recorded for _, recorded, _ in batched)


def test_the_batch_read_evaluates_a_real_o2_mixed_precision_dump_as_numpys_read(tmp_path, monkeypatch):
    """float16 tensors, and files named Float16 holding float32 bytes (MindSpore's CPU O2 dump)."""
    dump = plain_mindspore_dump(SCRIPTS / "amp_o2.py", tmp_path / "dump", "jit")
    reads = _count_reads(monkeypatch) if stats.KERNEL is not None else None
    batched = _evaluation(dump, True, monkeypatch)
    if reads is not None:
        assert len(reads) > 10
    assert batched == _evaluation(dump, False, monkeypatch)
    assert any("'dtype': 'float16'" in stats_repr for _, recorded, _ in batched for _, stats_repr in recorded)
