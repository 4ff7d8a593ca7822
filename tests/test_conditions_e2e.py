"""Each planted symptom in real CPU training is caught by the right condition, on the right tensors only."""

import json

import pytest

from conftest import SCRIPTS, run_msdbg


def _batch(tmp_path, mode, *commands):
    out = tmp_path / "hits.json"
    args = ["run", "--batch", "--json", str(out)]
    for command in commands:
        args += ["-c", command]
    done = run_msdbg(*args, str(SCRIPTS / "symptoms.py"), mode)
    assert done.returncode in (0, 1), done.stderr[-3000:]
    return done, json.loads(out.read_text())["hits"]


def _params(hits, condition):
    return {h["param"] for h in hits if h["condition"] == condition}


def test_frozen_layer_weight_not_changed_on_exactly_the_frozen_parameters(tmp_path):
    _, hits = _batch(tmp_path, "frozen", "watch weight_not_changed")
    assert _params(hits, "weight_not_changed") == {"fc1.weight", "fc1.bias"}
    assert {h["step"] for h in hits} == {0, 1, 2, 3}, "checked from the first step on (pre-update values)"


def test_all_zero_initialisation(tmp_path):
    _, hits = _batch(tmp_path, "zero_init", "watch recommended")
    init = [h for h in hits if h["condition"] == "weight_initialization"]
    assert [(h["param"], h["step"]) for h in init] == [("fc1.weight", 0)]
    assert init[0]["stats"]["zero"] == 128


def test_dead_relu(tmp_path):
    _, hits = _batch(tmp_path, "dead_relu", "watch recommended", "watch tensor_all_zero on ReLU")
    relu = [h for h in hits if h["op_type"] == "ReLU"]
    assert {h["condition"] for h in relu} == {"activation_range", "tensor_all_zero"}
    assert all(h["node"].endswith("relu-ReLU/ReLU-op0") for h in relu)
    assert {h["step"] for h in relu} == {0, 1, 2, 3}


def test_deep_sigmoid_gradients_vanish_in_the_first_layers_only(tmp_path):
    _, hits = _batch(tmp_path, "deep_sigmoid", "watch gradient_vanishing abs_mean_lt=1e-6")
    vanishing = {h["param"] for h in hits if h["step"] == 0}
    assert {"layers.0.0.weight", "layers.1.0.weight", "layers.2.0.weight"} <= vanishing
    assert not vanishing & {"layers.7.0.weight", "layers.6.0.weight", "head.weight", "head.bias"}
    assert all(h["category"] == "gradient" for h in hits)


@pytest.mark.parametrize("script", ["healthy.py", "slow_loop.py"])
def test_healthy_runs_are_clean_with_the_recommended_set(script):
    args = ["run", "--batch", "-c", "watch recommended", str(SCRIPTS / script)]
    done = run_msdbg(*args, *(["12"] if script == "slow_loop.py" else []))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "msdbg: 0 hits" in done.stdout
