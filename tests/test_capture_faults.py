"""Capture faults: outputs checked before training, one run per --dump-dir, a run that never trains, a full disk."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DEMOS, run_msdbg

NOT_TRAINING = "print('no training here')\n"


def _errors(done) -> str:
    return "\n".join(line for line in done.stderr.splitlines() if line.startswith("msdbg: error:"))


def test_an_unwritable_json_path_is_refused_before_training(tmp_path):
    script = tmp_path / "train.py"
    script.write_text("print('step 0 loss 1.0')\n")
    done = run_msdbg("run", "--batch", "--nx", "--json", str(tmp_path / "missing" / "x.json"), "-c",
                     "watch tensor_overflow", str(script), timeout=60)
    assert done.returncode == 2
    assert _errors(done) == (f"msdbg: error: --json {tmp_path / 'missing' / 'x.json'}: "
                                   "No such file or directory")
    assert "step 0 loss" not in done.stdout, "the training did not start"


def test_a_dump_dir_in_use_by_a_live_run_is_refused(tmp_path):
    dump = tmp_path / "dump"
    dump.mkdir()
    (dump / ".msdbg-lock-rank_0").write_text(str(os.getpid()))  # this test process: alive
    script = tmp_path / "train.py"
    script.write_text(NOT_TRAINING)
    done = run_msdbg("run", "--batch", "--nx", "--dump-dir", str(dump), "-c", "watch tensor_overflow", str(script),
                     timeout=60)
    assert done.returncode == 2
    assert _errors(done) == (f"msdbg: error: --dump-dir {dump}: in use by another msdbg run (PID "
                                   f"{os.getpid()}); use another directory")
    assert "no training here" not in done.stdout


@pytest.mark.slow
def test_a_stale_lock_is_taken_over_and_a_run_that_never_trains_warns_and_fails(tmp_path):
    dump = tmp_path / "dump"
    dump.mkdir()
    (dump / ".msdbg-lock-rank_0").write_text("999999999")  # no such process
    script = tmp_path / "train.py"
    script.write_text("import mindspore\n" + NOT_TRAINING)
    done = run_msdbg("run", "--batch", "--nx", "--dump-dir", str(dump), "-c", "watch tensor_overflow", str(script),
                     timeout=120)
    assert "no training here" in done.stdout
    warnings = [line for line in done.stderr.splitlines() if "no training step was captured" in line]
    assert done.returncode == 2 and len(warnings) == 1, done.stderr[-2000:]
    assert not (dump / ".msdbg-lock-rank_0").exists(), "the lock is released at the end"


def _mount_tmpfs(where: Path, kilobytes: int) -> bool:
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kilobytes}k", "tmpfs", str(where)],
                          capture_output=True)
    return done.returncode == 0


def _size_kb(path: Path) -> int:
    """Kilobytes ``path`` takes on a tmpfs: every file (and folder) takes whole 4 KiB pages."""
    return sum(-(-f.stat().st_size // 4096) * 4 if f.is_file() else 4 for f in path.rglob("*")) + 4


@pytest.mark.slow
def test_a_full_disk_stops_the_checks_once_and_the_training_goes_on(jit_nan_dump, tmp_path):
    """A tmpfs sized for the graphs and three and a half steps of the nan_log demo (root only: mount)."""
    rank = Path(jit_nan_dump) / "rank_0"
    step = _size_kb(rank / "Net" / "0" / "0")
    fixed = _size_kb(rank / "graphs") + _size_kb(rank / "execution_order")
    where = tmp_path / "small"
    if os.geteuid() != 0 or not _mount_tmpfs(where, fixed + step * 7 // 2 + 64):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        plain = subprocess.run([sys.executable, str(DEMOS / "nan_log.py")], capture_output=True, text=True,
                               timeout=300, env=dict(os.environ, GLOG_v="3"))
        done = run_msdbg("run", "--batch", "--nx", "--keep-steps", "1000", "--dump-dir", str(where / "dump"),
                         "-c", "watch tensor_too_large max_gt=-1e30 on fc1.weight", str(DEMOS / "nan_log.py"))
    finally:
        subprocess.run(["umount", str(where)], capture_output=True)
    losses = [line for line in done.stdout.splitlines() if " loss " in line]
    assert losses == [line for line in plain.stdout.splitlines() if " loss " in line] and len(losses) == 6
    full = [line for line in done.stderr.splitlines() if "is full" in line]
    assert len(full) == 1 and "steps from 3 on are not checked" in full[0], done.stderr[-2000:]
    assert done.returncode == 2
    for kept in ("step 0 (rank 0, graph 0): watchpoint 1", "step 2 (rank 0, graph 0): watchpoint 1"):
        assert kept in done.stdout, "what was found before the disk filled is kept"
    assert "Traceback" not in done.stderr
    shutil.rmtree(where, ignore_errors=True)
