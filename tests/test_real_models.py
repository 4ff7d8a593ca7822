"""`watch recommended`, user steps and loss scaling on real model code (tests/scripts/zoo_train.py, graph mode, CPU).

mindcv 0.3.0 resnet18 / mobilenet_v2 on 32x32 images (batch 4), a Transformer encoder, an LSTM, gradient accumulation with
control flow, Model.train then Model.eval, O2 mixed precision with DynamicLossScaler + all_finite in a jit loop.
"""

import json

import pytest

from conftest import SCRIPTS, run_msdbg

ZOO = str(SCRIPTS / "zoo_train.py")


def _run(tmp_path, *script_args, commands=("watch recommended",)):
    out = tmp_path / "report.json"
    args = ["run", "--batch", "--nx", "--json", str(out)]
    for command in commands:
        args += ["-c", command]
    done = run_msdbg(*args, ZOO, *script_args, timeout=600)
    assert done.returncode in (0, 1), done.stderr[-3000:]
    assert "trained" in done.stdout, done.stderr[-3000:]
    return done, json.loads(out.read_text())


def _notes(done):
    return [line for line in done.stderr.splitlines() if line.startswith("msdbg: note")]


@pytest.mark.slow
@pytest.mark.parametrize("model, steps", [("resnet18", "3"), ("mobilenet_v2", "3"), ("transformer", "4"),
                                          ("lstm", "4"), ("warmup", "4")])
def test_recommended_is_silent_on_healthy_models(tmp_path, model, steps):
    pytest.importorskip("mindcv") if model in ("resnet18", "mobilenet_v2") else None
    done, report = _run(tmp_path, model, "healthy", steps)
    assert report["hits"] == [], [(h["condition"], h["node"], h["reasons"]) for h in report["hits"]][:5]
    assert done.returncode == 0
    assert f"0 hits in {steps} steps" in done.stdout, "the user's number of steps"
    assert _notes(done) == [], "no notes on a healthy run"


@pytest.mark.slow
def test_gradient_accumulation_counts_the_users_steps_and_stays_silent(tmp_path):
    """6 calls of a jit step with an `if` that updates every 2nd call: 6 steps (not 12 graph runs), no hit:
    the acc.* buffers are not weights, and accumulation steps that update nothing are not frozen weights."""
    done, report = _run(tmp_path, "accum", "healthy", "6")
    assert report["hits"] == [], [(h["condition"], h["node"]) for h in report["hits"]][:5]
    assert "0 hits in 6 steps (" in done.stdout
    assert report["steps"] == {"train": 6}
    assert _notes(done) == []


@pytest.mark.slow
def test_model_train_then_eval_counts_phases_apart(tmp_path):
    done, report = _run(tmp_path, "train_eval", "healthy", "4")
    assert report["hits"] == []
    assert "0 hits in 4 steps and 4 eval steps" in done.stdout
    assert _notes(done) == []


@pytest.mark.slow
def test_frozen_block_is_found_by_recommended(tmp_path):
    """mindcv resnet18 whose first half of parameters never reaches the optimizer."""
    pytest.importorskip("mindcv")
    done, report = _run(tmp_path, "resnet18", "frozen", "4")
    frozen = [h for h in report["hits"] if h["condition"] == "weight_frozen"]
    assert frozen and {h["param"] for h in frozen} >= {"conv1.weight"}
    assert all(h["phase"] == "train" and h["step"] == 2 for h in frozen), "third step: steps_ge=3"
    assert not any(h["param"].startswith("classifier") for h in frozen), "updated weights never hit"
    assert {d["rule"] for d in report["diagnosis"]} >= {"frozen_parameters"}


@pytest.mark.slow
def test_unused_lstm_direction_is_no_gradient_path(tmp_path):
    """A bidirectional LSTM whose reverse half's output is sliced away: its gradients are exactly 0."""
    done, report = _run(tmp_path, "lstm", "unused", "4")
    zero = [h for h in report["hits"] if h["condition"] == "gradient_vanishing"]
    assert zero and all("reverse" in h["param"] for h in zero)
    rules = {d["rule"] for d in report["diagnosis"]}
    assert "no_gradient_path" in rules and "vanishing_gradients" not in rules
    assert "no gradient path to this parameter" in done.stdout


@pytest.mark.slow
def test_o2_loss_scaler_skips_are_reported_as_such(tmp_path):
    """O2 + DynamicLossScaler(2**22) in a jit loop: the first 4 steps overflow in float16 and are skipped."""
    done, report = _run(tmp_path, "amp", "healthy", "6", commands=(
        "watch recommended", "watch loss_scale_improper consecutive_skips_ge=3"))
    skips = report["loss_scale_skips"]
    assert [s["step"] for s in skips] == [0, 1, 2, 3]
    assert all(s["scale_after"] == s["scale_before"] / 2 for s in skips if s["scale_before"] is not None)
    assert skips[1]["scale_before"] == 2.0 ** 21 and skips[1]["scale_after"] == 2.0 ** 20
    assert "step 1 skipped by loss scaling (scale 2.09715e+06 -> 1.04858e+06)" in done.stdout
    assert report["steps"] == {"train": 6}, "6 user steps, not 12 graph runs"
    overflow = [h for h in report["hits"] if h["condition"] == "tensor_overflow"]
    assert not any(h["node"].startswith("Gradients") or h["category"] == "gradient" for h in overflow), \
        "gradient overflow of skipped steps is not a hit"
    improper = [h for h in report["hits"] if h["condition"] == "loss_scale_improper"]
    assert [(h["params"]["consecutive_skips_ge"], h["step"]) for h in improper] == [(3.0, 2)], \
        "the default (16 in a row) stays silent; 3 in a row hits once, at step 2"
    assert improper[0]["param"] == "scale_value"
    assert "loss_scale_improper" in {d["rule"] for d in report["diagnosis"]}
    others = [h for h in report["hits"] if h["condition"] != "loss_scale_improper"]
    assert others == [], [(h["condition"], h["node"]) for h in others][:5]  # O2 + watch recommended: silent
