"""PyNative training (MindSpore's default mode) under msdbg: never a silent pass, --graph-mode, native capture.

Every test runs tests/scripts/pynative_train.py, a plain PyNative loop (no set_context, no @ms.jit), in a
subprocess on CPU.
"""

import json
import re
import os
import subprocess
import sys

import pytest

from conftest import ROOT, SCRIPTS, run_msdbg

SCRIPT = str(SCRIPTS / "pynative_train.py")
NOT_CAPTURED = "the forward and backward passes ran in PyNative mode and were not captured"


def _losses(stdout):
    return [line for line in stdout.splitlines() if line.startswith("loss")]


def _plain_losses(*args):
    """The script's losses without msdbg."""
    done = subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), GLOG_v="3"))
    assert done.returncode == 0, done.stderr[-2000:]
    return _losses(done.stdout)


def _origins(json_path, step):
    hits = json.loads(json_path.read_text())["hits"]
    return [h for h in hits if h["first_offending"] and h["step"] == step]


@pytest.mark.slow
def test_uncaptured_hand_written_update_is_never_clean(tmp_path):
    out = tmp_path / "report.json"
    done = run_msdbg("run", "--batch", "--no-pynative", "-c", "watch tensor_overflow", "--json", str(out),
                     SCRIPT, "manual", "log0")
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.count(NOT_CAPTURED) == 2, "one line at the first step and one in the summary"
    assert "--graph-mode" in done.stderr
    assert "no training step was captured" in done.stderr and "not reported as clean" in done.stderr
    warnings = json.loads(out.read_text())["warnings"]
    assert any(NOT_CAPTURED in w for w in warnings) and any("not reported as clean" in w for w in warnings)


@pytest.mark.slow
def test_uncaptured_optimizer_run_says_what_was_missed():
    done = run_msdbg("run", "--batch", "--no-pynative", "-c", "watch tensor_overflow", SCRIPT, "sgd", "healthy", "2")
    assert NOT_CAPTURED in done.stderr and "2 backward passes, 2 optimizer calls outside any graph" in done.stderr
    assert done.returncode == 0, "the optimizer's own graph was captured and is clean"


@pytest.mark.slow
def test_run_that_never_trains_is_not_clean():
    done = run_msdbg("run", "--batch", "-c", "watch tensor_overflow", SCRIPT, "none", "healthy", "2")
    assert done.returncode == 2, done.stderr[-3000:]
    assert "no training step was captured" in done.stderr and NOT_CAPTURED not in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("update", ["manual", "adam"])
def test_graph_mode_finds_log_of_zero_with_its_line(tmp_path, update):
    out = tmp_path / "hits.json"
    done = run_msdbg("run", "--graph-mode", "--batch", "-c", "watch tensor_overflow", "--json", str(out),
                     SCRIPT, update, "log0")
    assert done.returncode == 1, done.stderr[-3000:]
    origin, = [h for h in _origins(out, 2) if h["op_type"] == "Log"]
    assert "pynative_train.py:29" in origin["source"] and "ops.log(x)" in origin["source"]
    assert NOT_CAPTURED not in done.stderr
    assert _losses(done.stdout) == _plain_losses(update, "log0"), "graph mode trains as PyNative did"


@pytest.mark.slow
def test_graph_mode_names_the_line_that_recompiles_and_keeps_graph_mode(tmp_path):
    script = tmp_path / "asks_pynative.py"
    script.write_text("import mindspore as ms, runpy, sys\nms.set_context(mode=ms.PYNATIVE_MODE)\n"
                      f"sys.argv = [{SCRIPT!r}, 'sgd', 'healthy+steparg', '4']\n"
                      f"runpy.run_path({SCRIPT!r}, run_name='__main__')\n")
    done = run_msdbg("run", "--graph-mode", "--batch", "-c", "watch tensor_overflow", str(script))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "asks_pynative.py:2  ms.set_context(mode=ms.PYNATIVE_MODE) asks for PyNative mode; --graph-mode keeps "\
           "graph mode" in done.stderr
    assert done.stderr.count("was compiled again") == 1
    assert "graph 'after_grad' called at " in done.stderr and "loss, grads = grad_fn(*args)" in done.stderr
    assert "argument 3 was 0, 1, 2" in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("update", ["adam", "sgd", "manual", "model"])
def test_native_capture_finds_log_of_zero_with_its_line(tmp_path, update):
    out = tmp_path / "hits.json"
    done = run_msdbg("run", "--batch", "-c", "watch tensor_overflow", "--json", str(out), SCRIPT, update, "log0")
    assert done.returncode == 1, done.stderr[-3000:]
    hits = json.loads(out.read_text())["hits"]
    assert min(h["step"] for h in hits) == 2, "nothing is non-finite before the planted zero"
    origin, = _origins(out, 2)
    assert origin["op_type"] == "Log" and origin["category"] == "activation" and origin["node"].endswith("/Log-op0")
    assert origin["stats"]["neg_inf"] == 1
    assert "pynative_train.py:29" in origin["source"] and "ops.log(x)" in origin["source"]
    step2 = [h for h in hits if h["step"] == 2]
    assert {h["param"] for h in step2 if h["category"] == "gradient"} == {"fc1.weight", "fc1.bias", "fc2.weight",
                                                                          "fc2.bias"}
    assert {h["param"] for h in step2 if h["category"] == "weight"} >= {"fc1.weight", "fc2.weight"}
    assert "origin: Log Default/" in done.stdout and "(rank 0, PyNative)" in done.stdout
    assert "no known cause" not in done.stdout and "SGD-op" not in done.stdout
    assert NOT_CAPTURED not in done.stderr
    assert _losses(done.stdout) == _plain_losses(update, "log0"), "recording does not change the training"


@pytest.mark.slow
@pytest.mark.parametrize("update", ["adam", "manual"])
def test_native_capture_healthy_run_with_recommended_is_clean(update):
    done = run_msdbg("run", "--batch", "-c", "watch recommended", SCRIPT, update, "healthy")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "msdbg: 0 hits in 4 steps" in done.stdout
    assert "internal error" not in done.stderr


@pytest.mark.slow
def test_native_capture_judges_weights_before_the_first_update(tmp_path):
    out = tmp_path / "hits.json"
    done = run_msdbg("run", "--batch", "-c", "watch weight_initialization", "-c", "watch weight_not_changed",
                     "--json", str(out), SCRIPT, "manual", "zeroinit", "2")
    assert done.returncode == 1, done.stderr[-3000:]
    hits = json.loads(out.read_text())["hits"]
    assert [(h["condition"], h["step"], h["param"]) for h in hits] == [("weight_initialization", 0, "fc1.weight")]
    assert "no previous step" not in done.stderr and "no pre-update value" not in done.stderr


@pytest.mark.slow
def test_native_capture_at_the_prompt(tmp_path):
    commands = "continue\nlist --gradients\nprint grad:fc2.bias\nstats Log-op0\ntrace\nquit\n"
    done = run_msdbg("run", "-c", "watch tensor_overflow", SCRIPT, "adam", "log0", input_text=commands)
    assert "watchpoint hit" in done.stdout and "step 2 (rank 0, PyNative)" in done.stdout, done.stdout[-3000:]
    assert re.search(r"^  fc2\.bias +Gradient +gradient fc2\.bias +\(1\) +float32 ", done.stdout, re.M), "list --gradients"
    assert "fc2.bias (gradient, Gradient output 0, step 2)" in done.stdout, "print grad:PARAM"
    trace = done.stdout[done.stdout.index("(msdbg) trace"):]
    assert "origin Log Default/Net/Log-op0" in trace, "trace walks from the last hit back to Log"
    assert len(_losses(done.stdout)) == 2, "quit at the hit of step 2 (before it prints its loss) stops the training"
