"""The accuracy guide's checklist: each detectable item planted in a real CPU training and found by
``watch recommended`` (plus one explicit watchpoint where the item needs a user's threshold) and named by
diagnose; healthy controls (an MLP, a CNN with BatchNorm, an LSTM) stay silent under the same set."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from conftest import ROOT, SCRIPTS, run_msdbg
from msdbg.engine.checklist import CHECKLIST, markdown_table
from msdbg.engine.conditions import CONDITIONS
from msdbg.engine.data import _runs_needed, bad_samples
from msdbg.engine.diagnose import RULES
from msdbg.engine.recommended import RECOMMENDED
from msdbg.engine.structure import feeding_weights
from msdbg.store.graph import Graph, Node

SCRIPT = str(SCRIPTS / "checklist.py")


def test_readme_table_is_the_checklist():
    readme = (ROOT / "README.md").read_text()
    assert markdown_table() in readme


def test_every_named_detector_exists_and_every_item_says_how():
    rule_ids = {rule.id for rule in RULES}
    for item in CHECKLIST:
        assert set(item.conditions) <= set(CONDITIONS), item
        assert set(item.rules) <= rule_ids, item
        assert bool(item.not_detectable) != bool(item.conditions or item.rules), item
        assert item.not_detectable or item.shown_by, item


def test_recommended_watches_the_data():
    names = {name for name, _, _ in RECOMMENDED}
    assert {"input_too_large", "input_turbulence", "label_out_of_range", "label_imbalance",
            "label_unshuffled"} <= names


def test_bad_samples_names_the_rows_with_nan_or_inf():
    batch = np.ones((6, 3, 2), np.float32)
    batch[4, 1, 0] = np.nan
    batch[1, 0, 1] = -np.inf
    assert bad_samples(batch) == "NaN/Inf in samples 1, 4 of the batch (2 of 6)"
    assert bad_samples(np.ones((3, 2), np.float32)) is None
    assert bad_samples(np.arange(4)) is None  # integers hold no NaN


@pytest.mark.parametrize("batch, classes, needed", [(12, 3, 3), (2, 2, 14), (4, 2, 5), (8, 10, 3), (1, 3, np.inf)])
def test_one_class_batches_needed_grow_where_they_happen_by_chance(batch, classes, needed):
    assert _runs_needed(batch, classes, 3) == needed


def _layer_graph(*ops: tuple[str, str, list[str]]) -> Graph:
    """x (data), w1 (16, 6), w2 (16, 6), b1 (16,), gamma (16,) and the given ops (name, op type, inputs)."""
    params = [Node("x", "x", "Parameter", "", shape=(12, 6)), Node("w1", "w1", "Parameter", "", shape=(16, 6)),
              Node("w2", "w2", "Parameter", "", shape=(16, 6)), Node("b1", "b1", "Parameter", "", shape=(16,)),
              Node("gamma", "gamma", "Parameter", "", shape=(16,))]
    nodes = [Node(name, f"Default/{name}", op_type, "Default", inputs) for name, op_type, inputs in ops]
    loads = [Node(f"load_{p}", f"Default/load_{p}", "Load", "Default", [p]) for p in ("w1", "w2")]
    return Graph(0, params + loads + nodes, {"x": False, "w1": True, "w2": True, "b1": True, "gamma": True},
                 [n.full_name for n in nodes])


@pytest.mark.parametrize("ops, expected", [
    # Dense: MatMul then BiasAdd (a 1-axis parameter is no layer weight), through a Load
    ([("mm", "MatMul", ["x", "load_w1"]), ("add", "BiasAdd", ["mm", "b1"]), ("act", "Sigmoid", ["add"])], ["w1"]),
    # two layers summed into the activation: both set its input's scale
    ([("mm1", "MatMul", ["x", "w1"]), ("mm2", "MatMul", ["x", "load_w2"]), ("add", "Add", ["mm1", "mm2"]),
      ("act", "Tanh", ["add"])], ["w1", "w2"]),
    # only the nearest layer: w1 feeds w2's MatMul through a ReLU, not the Tanh directly
    ([("mm1", "MatMul", ["x", "w1"]), ("relu", "ReLU", ["mm1"]), ("mm2", "MatMul", ["relu", "w2"]),
      ("act", "Tanh", ["mm2"])], ["w2"]),
    # a BatchNorm between the layer and the activation resets the scale: no weight
    ([("mm", "MatMul", ["x", "w1"]), ("bn", "BatchNorm", ["mm", "gamma", "b1"]), ("act", "Sigmoid", ["bn"])], []),
])
def test_feeding_weights_are_the_nearest_layers_into_the_activation(ops, expected):
    assert feeding_weights(_layer_graph(*ops), "act") == expected


def _check(tmp_path, *args: str) -> tuple[object, dict]:
    report = tmp_path / "hits.json"
    done = run_msdbg("run", "--batch", "--json", str(report), *args)
    assert report.exists(), done.stdout[-2000:] + done.stderr[-2000:]
    return done, json.loads(report.read_text())


PLANTED = [
    # (mode, style, extra commands, expected rule, a phrase of its evidence)
    ("symmetric_init", "model", (), "symmetric_initialization", "hidden.0.weight; inp.weight; out.weight"),
    ("saturating_init", "jit", (), "init_scale_saturates", "saturated at step 0, fed by inp.weight: std "),
    ("missing", "jit", (), "missing_values_in_data", "NaN/Inf in sample 4 of the batch"),
    ("missing", "model", (), "missing_values_in_data", "NaN/Inf in sample 4 of the batch"),
    ("bad_labels", "jit", (), "wrong_labels", ""),
    ("imbalanced", "model", (), "class_imbalance", ""),
    ("unshuffled", "model", (), "unshuffled_data", ""),
    ("shared", "model", (), "shared_weight", "hidden.0.weight is read by 2 forward MatMul ops"),
    ("softmax_loss", "model", (), "softmax_into_logits_loss", "Softmax"),
    ("disconnected", "model", (), "disconnected_parameter", "side.weight"),
    ("unnormalised", "model", (), "unnormalised_input", ""),
    ("abnormal", "model", (), "abnormal_input", ""),
    ("lr_low", "model", ("-c", "watch weight_change_too_small"), "learning_rate_too_low", "inp.weight"),
    ("flat", "model", (), "loss_not_converging", "the loss does not fall over 40 steps"),
    ("int_division", "model", (), "integer_division", "FloorDiv-op0 of int32 -> int32, made float32 by Cast"),
    ("exploding", "model", (), "loss_exploding", "from step 9, rising every step since step 1"),
    ("oscillating", "jit", (), "loss_oscillating", "the loss zigzags from step 0"),
]
def test_every_planted_case_is_cited_by_the_item_whose_rule_it_shows():
    for mode, _, _, rule, _ in PLANTED:
        citing = [item for item in CHECKLIST if rule in item.rules
                  and re.search(rf"tests/test_checklist\.py \([^)]*\b{mode}\b", item.shown_by)]
        assert citing, (mode, rule)


STEPS = {"flat": ("40",), "exploding": ("30",), "oscillating": ("30",)}


@pytest.mark.slow
@pytest.mark.parametrize("mode, style, extra, rule, evidence", PLANTED, ids=[f"{p[0]}-{p[1]}" for p in PLANTED])
def test_planted_item_is_found_and_named(tmp_path, mode, style, extra, rule, evidence):
    done, report = _check(tmp_path, "-c", "watch recommended", *extra, SCRIPT, mode, style, *STEPS.get(mode, ()))
    assert f"trained {mode} {style}" in done.stdout
    found_without_hits = {"shared_weight", "softmax_into_logits_loss", "disconnected_parameter", "loss_not_converging",
                          "integer_division", "loss_exploding", "loss_oscillating"}
    assert done.returncode == 1 or rule in found_without_hits
    found = {finding["rule"]: finding for finding in report["diagnosis"]}
    assert rule in found, (sorted(found), done.stdout[-3000:])
    assert found[rule]["consequence_of"] is None  # the planted cause is a root, not a consequence
    assert evidence in "; ".join(found[rule]["evidence"])


@pytest.mark.slow
@pytest.mark.parametrize("mode, style, steps", [("healthy", "model", "40"), ("healthy", "jit", "6"),
                                               ("cnn", "model", "6"), ("lstm", "jit", "6"),
                                               ("coarse_labels", "model", "6"), ("int_legit", "model", "6"),
                                               ("embedding", "jit", "6")])
def test_healthy_controls_stay_silent(tmp_path, mode, style, steps):
    done, report = _check(tmp_path, "-c", "watch recommended", SCRIPT, mode, style, steps)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert report["hits"] == [] and report["diagnosis"] == [] and report["unexplained"] == []
    assert f"trained {mode} {style}" in done.stdout
