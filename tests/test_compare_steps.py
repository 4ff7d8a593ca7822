"""How compare pairs the steps of two dump trees (folders only: no tensors needed)."""

import pytest

from msdbg.engine.compare import pair_steps
from msdbg.errors import UsageError
from msdbg.store.dumpdir import DumpDir
from msdbg.store.stepspec import parse_step_spec


def _tree(root, iterations, rank=0, graph=0):
    for iteration in iterations:
        (root / f"rank_{rank}" / "Net" / str(graph) / str(iteration)).mkdir(parents=True)
    return DumpDir(str(root))


def test_same_iterations_pair_by_number_and_steps_select_a(tmp_path):
    a, b = _tree(tmp_path / "a", [0, 1, 2]), _tree(tmp_path / "b", [0, 1, 2, 3])
    steps, notes = pair_steps(a, b, steps=parse_step_spec("1-2"))
    assert [(ka.iteration, kb.iteration) for ka, kb in steps] == [(1, 1), (2, 2)] and notes == []


def test_other_iteration_numbers_pair_by_position_with_a_note(tmp_path):
    a, b = _tree(tmp_path / "a", [0, 1, 2]), _tree(tmp_path / "b", [5, 6, 7])
    steps, notes = pair_steps(a, b)
    assert [(ka.iteration, kb.iteration) for ka, kb in steps] == [(0, 5), (1, 6), (2, 7)]
    assert "by position" in notes[0]


def test_ranks(tmp_path):
    a = _tree(tmp_path / "a", [0])
    _tree(tmp_path / "a", [0], rank=1)
    b = _tree(tmp_path / "b", [0])
    steps, notes = pair_steps(a, b)
    assert [ka.rank for ka, _ in steps] == [0] and "ranks only in one run" in notes[0]
    with pytest.raises(UsageError, match=r"--rank 1: run B .* has ranks 0"):
        pair_steps(a, b, rank=1)
