"""msdbg's own dump on a fast file system: placed there, moved to disk when room runs out, cleaned up."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, run_msdbg
from msdbg import leftovers
from msdbg.capture import fastdump

SCRIPTS = ROOT / "tests" / "scripts"


def test_dump_starts_on_the_fast_folder_and_moves_to_disk_when_it_fills(tmp_path, monkeypatch):
    fast = tmp_path / "fast"
    fast.mkdir()
    monkeypatch.setenv(fastdump.FAST_DIR_ENV, str(fast))
    monkeypatch.setenv(fastdump.MIN_FREE_ENV, "1")
    done = run_msdbg("run", "--batch", "--nx", "-c", "watch tensor_overflow", str(SCRIPTS / "fastdump_move.py"))
    assert done.returncode == 1, done.stderr[-3000:]
    folders = dict(re.findall(r"^step (\d) rank folder (\S+)$", done.stdout, re.M))
    assert sorted(folders) == [str(step) for step in range(7)]
    for step in ("0", "1"):
        assert folders[step].startswith(str(fast) + os.sep) and folders[step].endswith("rank_0")
    for step in ("2", "3", "4", "5", "6"):  # moved at the boundary after step 2, before step 3 ran
        assert folders[step].endswith(os.sep + ".rank_0.disk") and not folders[step].startswith(str(fast))
    assert re.search(rf"msdbg: dump moved from {re.escape(str(fast))}\S* to \S+\.rank_0\.disk", done.stderr)
    assert "step 4 graph 0:" in done.stderr  # the NaN after the move is found ...
    assert re.search(r"origin Log", done.stderr)  # ... and traced to its first node
    assert list(fast.iterdir()) == []  # nothing left on the fast file system


def test_no_fast_folder_without_room_or_when_switched_off(tmp_path, monkeypatch):
    root = tmp_path / "root"
    root.mkdir()
    monkeypatch.setenv(fastdump.FAST_DIR_ENV, str(tmp_path))
    monkeypatch.setenv(fastdump.MIN_FREE_ENV, str(10**12))  # more than any disk has
    assert fastdump.place_on_fast_storage(str(root), 0) is None
    monkeypatch.setenv(fastdump.FAST_DIR_ENV, "")
    monkeypatch.setenv(fastdump.MIN_FREE_ENV, "1")
    assert fastdump.place_on_fast_storage(str(root), 0) is None
    assert list(root.iterdir()) == []


def test_placed_link_and_removal(tmp_path, monkeypatch):
    root, fast = tmp_path / "root", tmp_path / "fast"
    root.mkdir(), fast.mkdir()
    monkeypatch.setenv(fastdump.FAST_DIR_ENV, str(fast))
    monkeypatch.setenv(fastdump.MIN_FREE_ENV, "1")
    placed = fastdump.place_on_fast_storage(str(root), 3)
    assert placed is not None
    link = root / "rank_3"
    assert link.is_symlink() and Path(os.path.realpath(link)).parent == Path(placed.fast_dir)
    assert Path(placed.fast_dir).name.startswith(f"msdbg-dump-{os.getpid()}-")
    placed.remove()
    assert list(fast.iterdir()) == []


def test_stale_folders_of_dead_processes_are_removed(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
    dead, alive = tmp_path / f"msdbg-dump-{finished.stdout.strip()}-abc", tmp_path / f"msdbg-dump-{os.getpid()}-x"
    other = tmp_path / "msdbg-dump-notapid"
    for folder in (dead, alive, other):
        (folder / "rank_0").mkdir(parents=True)
    assert leftovers.sweep(str(tmp_path)) == [str(dead)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, other.name])
