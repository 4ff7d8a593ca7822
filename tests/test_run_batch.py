"""End to end: ``msdbg run --batch`` on real graph-mode CPU training in subprocesses."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import DEMOS, ROOT, SCRIPTS, run_msdbg


def _hits(json_path):
    return json.loads(json_path.read_text())["hits"]


def _origin(hits):
    origins = [h for h in hits if h["first_offending"]]
    assert origins, "one hit is marked first_offending"
    return origins


def test_custom_jit_loop_log_of_zero(tmp_path):
    out = tmp_path / "hits.json"
    done = run_msdbg("run", "--batch", "-c", "watch tensor_overflow", "--json", str(out), str(DEMOS / "nan_log.py"))
    assert done.returncode == 1, done.stderr[-3000:]
    hits = _hits(out)
    assert {h["step"] for h in hits} == {3, 4, 5}, "NaN appears at step 3 and persists"
    step3 = [h for h in hits if h["step"] == 3]
    origin, = _origin(step3)
    assert origin["op_type"] == "Log" and origin["category"] == "activation" and origin["param"] is None
    assert origin["stats"]["neg_inf"] == 1
    assert origin["source"] and "nan_log.py" in origin["source"] and "ops.log(x)" in origin["source"]
    contract_keys = {"watchpoint", "condition", "step", "rank", "graph", "node", "op_type", "category", "param",
                     "io", "slot", "stats", "params", "first_offending"}
    assert contract_keys <= set(origin)
    gradient_hits = [h for h in step3 if h["category"] == "gradient"]
    assert gradient_hits and all(h["param"] in {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}
                                 for h in gradient_hits)
    assert "origin: Log" in done.stdout and "ops.log(x)" in done.stdout


@pytest.mark.parametrize("mode", ["nosink", "sink"])
def test_model_train_zero_over_zero(tmp_path, mode):
    out = tmp_path / "hits.json"
    done = run_msdbg("run", "--batch", "-c", "watch tensor_overflow", "--json", str(out),
                     str(SCRIPTS / "model_div_nan.py"), mode)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "trained" in done.stdout, "the script ran to its end"
    hits = _hits(out)
    assert min(h["step"] for h in hits) == 2
    origin, = _origin([h for h in hits if h["step"] == 2])
    assert origin["op_type"] in {"RealDiv", "Div"}
    assert origin["stats"]["nan"] > 0


def test_healthy_run_exits_clean():
    done = run_msdbg("run", "--batch", "-c", "watch tensor_overflow", str(SCRIPTS / "healthy.py"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "msdbg: 0 hits in 6 steps" in done.stdout


def test_keep_steps_bounds_the_dump_during_and_after(tmp_path):
    log = tmp_path / "steps.log"
    dump = tmp_path / "dump"
    env = dict(os.environ, PYTHONPATH=str(ROOT), MSDBG_TEST_STEP_LOG=str(log), GLOG_v="3")
    done = subprocess.run([sys.executable, "-m", "msdbg", "run", "--batch", "--keep-steps", "2", "--dump-dir",
                           str(dump), "-c", "watch tensor_overflow", str(SCRIPTS / "healthy.py"), "2"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    counts = [int(line) for line in log.read_text().split()]
    assert len(counts) == 12 and max(counts) <= 2
    assert len(os.listdir(dump / "rank_0" / "Net" / "0")) <= 2
    assert "12 steps" in done.stdout, "every step was evaluated before its folder was deleted"


def test_default_dump_dir_is_removed(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TMPDIR=str(tmp_path), GLOG_v="3")
    done = subprocess.run([sys.executable, "-m", "msdbg", "run", "--batch", str(SCRIPTS / "healthy.py")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not [p for p in os.listdir(tmp_path) if p.startswith("msdbg-")]


def test_truncated_npy_in_dump_gives_exit_2_naming_file(tmp_path, jit_nan_dump):
    dump = tmp_path / "dump"
    shutil.copytree(jit_nan_dump, dump)
    victim = next((dump / "rank_0" / "Net" / "0" / "1").glob("Log.*.output.0.*.npy"))
    victim.write_bytes(victim.read_bytes()[:100])
    done = run_msdbg("check", str(dump), "-c", "watch tensor_overflow")
    assert done.returncode == 2
    assert str(victim) in done.stderr and "truncated" in done.stderr
    assert "Traceback" not in done.stderr
    assert "origin: Log" in done.stdout, "the other files were still checked"


def test_unknown_dump_dir_parent_gives_exit_2():
    done = run_msdbg("run", "--batch", "--dump-dir", "/nonexistent/parent/dump", str(SCRIPTS / "healthy.py"))
    assert done.returncode == 2
    assert done.stderr.strip() == ("msdbg: error: --dump-dir /nonexistent/parent/dump: parent directory "
                                   "/nonexistent/parent does not exist")


def test_bad_watch_command_gives_exit_2_before_training():
    done = run_msdbg("run", "--batch", "-c", "watch tensor_overfow", str(SCRIPTS / "healthy.py"))
    assert done.returncode == 2
    assert "-c: unknown condition 'tensor_overfow'" in done.stderr and "tensor_overflow" in done.stderr
    assert "trained" not in done.stdout


def test_script_exception_shows_its_traceback_and_exit_code():
    done = run_msdbg("run", "--batch", str(SCRIPTS / "fails.py"), "raise")
    assert done.returncode == 1
    assert "script ran with ['raise']" in done.stdout
    assert "broken_helper" in done.stderr and "ValueError: the script's own bug" in done.stderr
    assert "runpy" not in done.stderr and "msdbg/" not in done.stderr


def test_script_exit_code_is_kept():
    done = run_msdbg("run", "--batch", str(SCRIPTS / "fails.py"), "exit")
    assert done.returncode == 3


def test_missing_script():
    done = run_msdbg("run", "--batch", "no_such_script.py")
    assert done.returncode == 2 and "no_such_script.py: no such file" in done.stderr
