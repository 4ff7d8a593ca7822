"""Pruning step folders, at once or set aside and deleted later (batch mode's barrier)."""

from __future__ import annotations

import os

import numpy as np

from conftest import SCRIPTS, run_msdbg
from msdbg.capture import retention
from msdbg.store.dumpdir import DumpDir


def _dump_of_steps(root, count: int) -> DumpDir:
    for iteration in range(count):
        folder = root / "rank_0" / "Net" / "0" / str(iteration)
        folder.mkdir(parents=True)
        np.save(folder / f"Add.Default_Add-op0.0.0.{iteration}.output.0.DefaultFormat.Float32.npy", np.ones(3))
    return DumpDir(str(root))


def test_trash_sets_pruned_folders_aside_where_no_listing_looks_then_deletes_them(tmp_path):
    dump = _dump_of_steps(tmp_path, 5)
    done = set(dump.steps()[:4])  # step 4 is not evaluated yet: never pruned
    trash = retention.Trash()
    removed = retention.prune(dump, done, 2, remove=trash.put)
    assert [key.iteration for key in removed] == [0, 1, 2]
    assert [key.iteration for key in dump.steps()] == [3, 4]
    assert sorted(os.listdir(tmp_path / "rank_0" / "Net" / "0")) == ["3", "4"]
    assert len([name for name in os.listdir(tmp_path / "rank_0" / "Net") if name.startswith(".msdbg-pruned")]) == 3
    trash.empty()
    assert os.listdir(tmp_path / "rank_0" / "Net") == ["0"]


def test_prune_deletes_at_once_by_default(tmp_path):
    dump = _dump_of_steps(tmp_path, 3)
    retention.prune(dump, set(dump.steps()), 1)
    assert os.listdir(tmp_path / "rank_0" / "Net") == ["0"]
    assert os.listdir(tmp_path / "rank_0" / "Net" / "0") == ["2"]


def test_each_step_boundary_lists_the_dump_once(tmp_path):
    done = run_msdbg("run", "--batch", "--nx", "--keep-steps", "2", "-c", "watch tensor_overflow",
                     str(SCRIPTS / "barrier_listings.py"), "6", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line.split(" loss ")[0] for line in done.stdout.splitlines() if line.startswith(("listing", "step "))]
    # one listing at each step's boundary, before the step returns; the last after the script, for what is left
    assert lines == [line for step in range(6) for line in ("listing", f"step {step}")] + ["listing"]
