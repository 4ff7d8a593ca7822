"""Dump paths with characters MindSpore refuses (a '.' in --dump-dir or in TMPDIR) still capture the training."""

import os
import subprocess
import sys
import tempfile

import pytest

from conftest import ROOT, SCRIPTS, run_msdbg
from msdbg.capture import dumppath
from msdbg.capture.dumppath import MindSporePath, accepted, private_dump_dir
from msdbg.errors import UsageError


def test_accepted_paths_are_given_as_they_are(tmp_path):
    plain = tmp_path / "runs" / "v1_2"
    plain.mkdir(parents=True)
    link = MindSporePath(str(plain))
    assert link.path == str(plain) and accepted(link.path)
    link.remove()
    assert plain.is_dir()


def test_a_dotted_folder_is_given_through_a_link(tmp_path):
    dotted = tmp_path / "runs" / "v1.2"
    dotted.mkdir(parents=True)
    link = MindSporePath(str(dotted))
    assert accepted(link.path) and os.path.realpath(link.path) == str(dotted.resolve())
    (dotted / "marker").write_text("x")
    assert os.path.exists(os.path.join(link.path, "marker"))
    link.remove()
    assert not os.path.lexists(link.path) and (dotted / "marker").exists()


def test_private_dump_folder_avoids_a_dotted_tmpdir(tmp_path, monkeypatch):
    dotted = tmp_path / "tmp.d"
    dotted.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(dotted))
    folder = private_dump_dir()
    try:
        assert accepted(folder) and not folder.startswith(str(dotted))
    finally:
        os.rmdir(folder)


def test_no_accepted_temporary_folder_is_one_line_before_training(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp.d"))
    monkeypatch.setattr(dumppath, "_FALLBACK_PARENTS", ())
    with pytest.raises(UsageError, match=r"--dump-dir /x\.y: MindSpore accepts only letters, digits"):
        dumppath.safe_temp_parent("--dump-dir /x.y")


@pytest.mark.slow
def test_run_with_a_dotted_dump_dir_and_a_dotted_tmpdir(tmp_path):
    dump = tmp_path / "runs" / "v1.2"
    dump.parent.mkdir()
    done = run_msdbg("run", "--batch", "--nx", "--dump-dir", str(dump), "--keep-steps", "100",
                     "-c", "watch tensor_overflow", str(SCRIPTS / "healthy.py"), "1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "msdbg: 0 hits in 6 steps" in done.stdout
    assert len(os.listdir(dump / "rank_0" / "Net" / "0")) == 6
    tmpdir = tmp_path / "tmp.d"
    tmpdir.mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT), GLOG_v="3", TMPDIR=str(tmpdir))
    env_done = subprocess.run([sys.executable, "-m", "msdbg", "run", "--batch", "--nx", "-c", "watch tensor_overflow",
                               str(SCRIPTS / "healthy.py"), "1"], env=env, capture_output=True, text=True, timeout=300)
    assert env_done.returncode == 0, env_done.stderr[-3000:]
    assert "msdbg: 0 hits in 6 steps" in env_done.stdout
