"""Shared fixtures: real MindSpore dumps and a way to run the msdbg CLI in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run (fixed seeds, no example database), so CI's verdict does not
# change from run to run; MSDBG_HYPOTHESIS_RANDOM=1 draws new ones (what to do when hunting for new failures).
settings.register_profile("fixed", derandomize=True, database=None)
settings.load_profile("default" if os.environ.get("MSDBG_HYPOTHESIS_RANDOM") else "fixed")

ROOT = Path(__file__).resolve().parent.parent
# Recordings of runs started by tests go to a temporary folder, never into the repository's ./.msdbg/runs
# (subprocesses inherit the variable).
_TEST_RUNS = tempfile.mkdtemp(prefix="msdbg-test-runs-")
os.environ.setdefault("MSDBG_RUNS_DIR", _TEST_RUNS)
SCRIPTS = ROOT / "tests" / "scripts"
DEMOS = ROOT / "demos"


def run_msdbg(*args: str, cwd: Path | None = None, timeout: int = 300,
              input_text: str | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m msdbg ARGS`` (``input_text`` on its stdin) and capture its output."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), GLOG_v="3")
    return subprocess.run([sys.executable, "-m", "msdbg", *args], cwd=cwd or ROOT, env=env, input=input_text,
                          capture_output=True, text=True, timeout=timeout)


def plain_mindspore_dump(script: Path, dump_root: Path, *script_args: str, input_output: int = 0) -> Path:
    """Run a training script with MindSpore's own dump switched on (no msdbg involved)."""
    config = {
        "common_dump_settings": {"dump_mode": 0, "path": str(dump_root), "net_name": "Net", "iteration": "all",
                                 "saved_data": "tensor", "input_output": input_output, "kernels": [],
                                 "support_device": [0, 1, 2, 3, 4, 5, 6, 7]},
        "e2e_dump_settings": {"enable": True, "trans_flag": True},
    }
    config_path = dump_root.parent / f"{dump_root.name}.json"
    config_path.write_text(json.dumps(config))
    env = dict(os.environ, MINDSPORE_DUMP_CONFIG=str(config_path), GLOG_v="3")
    done = subprocess.run([sys.executable, str(script), *script_args], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return dump_root


@pytest.fixture(autouse=True)
def _no_leaked_dump_config():
    """A test that installs a dump configuration in this process (MindSpore reads it from the environment) must
    not hand it to the trainings of later tests."""
    before = os.environ.get("MINDSPORE_DUMP_CONFIG")
    yield
    if before is None:
        os.environ.pop("MINDSPORE_DUMP_CONFIG", None)
    else:
        os.environ["MINDSPORE_DUMP_CONFIG"] = before


@pytest.fixture(scope="session", autouse=True)
def _remove_test_recordings():
    """Remove the test session's recordings folder at the end."""
    yield
    shutil.rmtree(_TEST_RUNS, ignore_errors=True)


@pytest.fixture(scope="session")
def jit_nan_dump(tmp_path_factory) -> Path:
    """A real dump of the custom @ms.jit loop demo (log of 0 at step 3)."""
    return plain_mindspore_dump(DEMOS / "nan_log.py", tmp_path_factory.mktemp("jit") / "dump")


@pytest.fixture(scope="session")
def model_nan_dump(tmp_path_factory) -> Path:
    """A real dump of Model.train with a planted 0/0 at step 2."""
    return plain_mindspore_dump(SCRIPTS / "model_div_nan.py", tmp_path_factory.mktemp("model") / "dump")
