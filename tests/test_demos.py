"""The bundled demos (demos/NAME.py with demos/NAME.msdbg): each planted cause is found by its watch file.

Every demo runs once (``msdbg run --batch --nx -x demos/NAME.msdbg --json OUT demos/NAME.py``, cached for the
module); one test per demo checks the hits, and a parametrized test checks that the diagnosis in the JSON names
the planted cause. The diagnosis assertions alone skip when the JSON has no "diagnosis" key.
"""

from __future__ import annotations

import ast
import json
import math
import re
import subprocess
from pathlib import Path

import pytest

from conftest import DEMOS, run_msdbg

#: demo -> the diagnosis rule that names its planted cause (None: no diagnosis at all)
RULES = {
    "nan_log": "log_of_nonpositive",
    "div_zero": "division_by_zero",
    "high_lr": "learning_rate_too_high",
    "vanishing_sigmoid": "vanishing_gradients",
    "dead_relu": "dead_relu",
    "frozen_layer": "frozen_parameters",
    "zero_init": "zero_initialization",
    "constant_init": "symmetric_initialization",
    "saturating_init": "init_scale_saturates",
    "unnormalised_input": "unnormalised_input",
    "wrong_loss_api": "sigmoid_into_logits_loss",
    "label_leakage": "loss_zero",
    "healthy": None,
    "integer_division": "integer_division",
    "exploding_loss": "loss_exploding",
}

#: demos whose test also reads the graph of the dump (kept with --dump-dir)
KEEP_DUMP = {"wrong_loss_api"}


class DemoRun:
    def __init__(self, done: subprocess.CompletedProcess, document: dict, dump: Path | None):
        self.done = done
        self.document = document
        self.hits: list[dict] = document["hits"]
        self.dump = dump

    def of(self, condition: str) -> list[dict]:
        return [h for h in self.hits if h["condition"] == condition]

    def losses(self) -> dict[int, float]:
        """The loss the demo printed at each step ("step N loss X")."""
        return {int(m[1]): float(m[2]) for m in re.finditer(r"^step (\d+) loss (\S+)$", self.done.stdout, re.M)}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """demo(NAME) -> its DemoRun; each demo runs once per module."""
    runs: dict[str, DemoRun] = {}

    def run(name: str) -> DemoRun:
        if name not in runs:
            work = tmp_path_factory.mktemp(name)
            out = work / "hits.json"
            args = ["run", "--batch", "--nx", "-x", f"demos/{name}.msdbg", "--json", str(out)]
            dump = work / "dump" if name in KEEP_DUMP else None
            if dump is not None:
                args += ["--dump-dir", str(dump)]
            done = run_msdbg(*args, f"demos/{name}.py")
            assert done.returncode in (0, 1), done.stdout[-2000:] + done.stderr[-3000:]
            runs[name] = DemoRun(done, json.loads(out.read_text()), dump)
        return runs[name]

    return run


def _diagnosis(document: dict) -> list[dict]:
    if "diagnosis" not in document:
        pytest.skip("the --json output has no 'diagnosis' yet")
    return document["diagnosis"]


def _expect_rule(document: dict, rule_id: str) -> None:
    assert rule_id in {d["rule"] for d in _diagnosis(document)}, document["diagnosis"]


def _finite(hit: dict) -> bool:
    return not any(hit["stats"].get(key) for key in ("nan", "pos_inf", "neg_inf"))


# ----- the demo files themselves -----------------------------------------------------------------------------
def test_every_demo_has_a_watch_file_and_a_one_line_summary():
    assert {p.stem for p in DEMOS.glob("*.py")} >= set(RULES)
    for name in RULES:
        assert (DEMOS / f"{name}.msdbg").is_file(), name
        doc = ast.get_docstring(ast.parse((DEMOS / f"{name}.py").read_text()))
        assert doc, name
        summary, _, rest = doc.partition("\n")
        assert summary.strip() and len(summary) <= 120 and rest.startswith("\n"), (name, summary)
        assert f"demos/{name}.py" in doc, f"{name}: the docstring says how to run it"


# ----- one test per demo: the planted cause shows ------------------------------------------------------------
def test_nan_log_origin_is_the_log_at_step_3(demo):
    run = demo("nan_log")
    overflow = run.of("tensor_overflow")
    assert min(h["step"] for h in overflow) == 3
    origin = [h for h in overflow if h["step"] == 3 and h["first_offending"]]
    assert [h["op_type"] for h in origin] == ["Log"]


def test_div_zero_origin_is_the_division_at_the_batch_with_the_empty_row(demo):
    run = demo("div_zero")
    overflow = run.of("tensor_overflow")
    assert min(h["step"] for h in overflow) == 2, "steps 0 and 1 are clean"
    origins = [h for h in overflow if h["step"] == 2 and h["first_offending"]]
    assert origins and {h["op_type"] for h in origins} <= {"RealDiv", "Div"}
    assert "demos/div_zero.py" in origins[0]["source"]
    assert all(h["op_type"] in {"RealDiv", "Div"} for h in overflow if h["watchpoint"] == 2)


def test_high_lr_update_and_gradient_watchpoints_hit_before_the_overflow(demo):
    run = demo("high_lr")
    cause = [h for h in run.hits if h["condition"] in {"weight_change_too_large", "gradient_too_large"}
             and _finite(h)]
    assert cause, "the too-large updates show as finite hits"
    assert {h["param"] for h in cause if h["condition"] == "weight_change_too_large"} <= {"fc1.weight",
                                                                                           "fc2.weight"}
    assert {h["category"] for h in cause if h["condition"] == "gradient_too_large"} == {"gradient"}
    first_cause = min(h["step"] for h in cause)
    overflow_steps = [h["step"] for h in run.of("tensor_overflow")]
    if overflow_steps:
        assert first_cause < min(overflow_steps)
    losses = run.losses()
    assert losses[1] > losses[0], "the loss grows"


def test_vanishing_sigmoid_gradients_vanish_in_the_first_layers_only(demo):
    run = demo("vanishing_sigmoid")
    vanishing = run.of("gradient_vanishing")
    first_layers = {f"layers.{i}.0.{p}" for i in range(4) for p in ("weight", "bias")}
    for step in range(4):
        assert {h["param"] for h in vanishing if h["step"] == step} == first_layers, step
    assert all(h["category"] == "gradient" for h in vanishing)
    # The Sigmoids sit near 0.5 (tiny weights), not at their flat ends: the saturation check stays silent.
    assert not run.of("activation_range")


def test_dead_relu_outputs_only_zeros_and_fc1_gets_no_gradient(demo):
    run = demo("dead_relu")
    for condition in ("activation_range", "tensor_all_zero"):
        hits = run.of(condition)
        assert {h["step"] for h in hits} == set(range(5)), condition
        assert {h["op_type"] for h in hits} == {"ReLU"}
        assert all(h["node"].endswith("relu-ReLU/ReLU-op0") for h in hits)
    assert {h["param"] for h in run.of("gradient_vanishing")} == {"fc1.weight", "fc1.bias"}
    rules = {d["rule"] for d in run.document["diagnosis"]}
    assert "dead_relu" in rules and "loss_zero" not in rules, "a ReLU under WithLossCell is not the loss"


def test_frozen_layer_weight_not_changed_on_exactly_the_parameters_left_out(demo):
    run = demo("frozen_layer")
    assert {h["condition"] for h in run.hits} == {"weight_not_changed"}
    assert {h["param"] for h in run.hits} == {"fc1.bias", "fc2.bias"}
    assert {h["step"] for h in run.hits} == {0, 1, 2, 3}


def test_zero_init_weight_initialization_on_fc1_weight_at_step_0(demo):
    run = demo("zero_init")
    init = run.of("weight_initialization")
    assert [(h["param"], h["step"]) for h in init] == [("fc1.weight", 0)]
    assert init[0]["stats"]["zero"] == 8 * 16


def test_constant_init_weight_symmetric_on_the_hidden_layers_whose_units_stay_identical(demo):
    run = demo("constant_init")
    symmetric = run.of("weight_symmetric")
    assert sorted((h["param"], h["step"]) for h in symmetric) == [("fc1.weight", 0), ("fc2.weight", 0)]
    assert all(h["stats"]["identical_rows"] is True for h in symmetric)
    assert {h["condition"] for h in run.hits} == {"weight_symmetric"}, "nothing else is out of range"
    difference = re.search(r"largest difference from unit 0 (\S+),", run.done.stdout)
    assert difference and float(difference[1]) == 0.0, "the units are still identical after 4 updates"
    losses = run.losses()
    assert losses[3] < losses[0]


def test_saturating_init_names_fc1_weight_as_the_cause_of_the_saturated_tanh(demo):
    run = demo("saturating_init")
    saturated = run.of("activation_range")
    assert {h["step"] for h in saturated} >= {0} and {h["op_type"] for h in saturated} == {"Tanh"}
    scale = run.of("weight_init_scale")
    assert [(h["param"], h["step"]) for h in scale] == [("fc1.weight", 0)], "the head's init is ordinary"
    finding = next(d for d in run.document["diagnosis"] if d["rule"] == "init_scale_saturates")
    assert finding["consequence_of"] is None
    [evidence] = finding["evidence"]
    assert "saturated at step 0, fed by fc1.weight" in evidence and "fan_in 256" in evidence
    std = float(re.search(r"std (\S+),", evidence)[1])
    assert 1.8 < std < 2.2, "Normal(sigma=2.0)"
    plain = next(d for d in run.document["diagnosis"] if d["rule"] == "saturated_activation")
    assert plain["consequence_of"] == "init_scale_saturates"


def test_unnormalised_input_too_large_on_the_data_and_the_first_layer(demo):
    run = demo("unnormalised_input")
    large = run.of("tensor_too_large")
    for step in range(4):
        at_step = [h for h in large if h["step"] == step]
        inputs = [h for h in at_step if h["category"] == "input"]
        assert [h["node"] for h in inputs] == ["inputs0"], "the features, not the labels (inputs1)"
        assert inputs[0]["stats"]["abs_mean"] > 1000
        first_layer = {h["op_type"] for h in at_step if h["category"] == "activation" and "fc1-Dense" in h["node"]}
        assert first_layer == {"MatMul", "BiasAdd"}
        origin = [h for h in at_step if h["first_offending"]]
        assert [(h["node"], h["category"]) for h in origin] == [("inputs0", "input")], \
            "trace-back goes through data inputs: the features are the origin"


def test_wrong_loss_api_graph_feeds_a_sigmoid_into_bce_with_logits(demo):
    from msdbg.store.dumpdir import DumpDir

    run = demo("wrong_loss_api")
    assert run.done.returncode == 0 and run.hits == [], "nothing numeric is out of range"
    graph = DumpDir(str(run.dump)).graph(0, 0)
    assert graph is not None
    loss_ops = [n for n in graph.nodes.values() if n.op_type == "BCEWithLogitsLoss"]
    assert len(loss_ops) == 1
    producer = graph.nodes[loss_ops[0].inputs[0]]
    assert producer.op_type == "Sigmoid" and producer.full_name.endswith("sigmoid-Sigmoid/Sigmoid-op0")
    # sigmoid(sigmoid(z)) lies in (0.5, 0.73): on balanced labels the loss stays near 0.5 or above.
    assert min(run.losses().values()) > 0.4


def test_label_leakage_loss_falls_below_1e_6(demo):
    run = demo("label_leakage")
    small = run.of("tensor_too_small")
    assert small and {(h["op_type"], h["node"], h["category"]) for h in small} == {
        ("ReduceMean", "Default/ReduceMean-op0", "activation")}
    steps = sorted(h["step"] for h in small)
    assert steps == list(range(steps[0], 8)) and steps[0] <= 5, "from some step on, to the end"
    losses = run.losses()
    assert losses[0] > 0.5 and losses[7] < 1e-6


def test_healthy_has_no_hit(demo):
    run = demo("healthy")
    assert run.done.returncode == 0, run.done.stdout[-3000:]
    assert run.hits == [] and "msdbg: 0 hits" in run.done.stdout
    losses = run.losses()
    assert losses[7] < losses[0]


def test_integer_division_is_named_with_its_source_line_and_dtypes(demo):
    run = demo("integer_division")
    assert run.done.returncode == 0 and run.hits == [], "nothing numeric is out of range"
    found = {d["rule"]: d for d in _diagnosis(run.document)}
    assert list(found) == ["integer_division"], list(found)
    [evidence] = found["integer_division"]["evidence"]
    line = next(i for i, text in enumerate((DEMOS / "integer_division.py").read_text().splitlines(), 1)
                if "pixels = ops.cast(images // 255" in text)
    assert evidence.startswith("FloorDiv ") and "of int32 -> int32, made float32 by Cast" in evidence
    assert f"demos/integer_division.py:{line}" in evidence


def test_exploding_loss_is_named_from_where_the_rise_began(demo):
    run = demo("exploding_loss")
    losses = run.losses()
    assert all(math.isfinite(v) for v in losses.values()) and max(losses.values()) > 1000 * min(losses.values())
    found = {d["rule"]: d for d in _diagnosis(run.document)}
    assert found["loss_exploding"]["consequence_of"] is None
    assert found["loss_not_converging"]["consequence_of"] == "loss_exploding"
    match = re.search(r"from step (\d+), rising every step since step (\d+)", found["loss_exploding"]["evidence"][0])
    crossed, start = int(match[1]), int(match[2])
    early = sorted(losses[s] for s in range(5))[2]
    assert losses[crossed] > 10 * early >= losses[crossed - 1]
    assert all(losses[s] > losses[s - 1] for s in range(start, len(losses))) and losses[start - 1] <= losses[start - 2]


# ----- the diagnosis names the planted cause (skipped while the JSON has no "diagnosis") -------------------
@pytest.mark.parametrize("name", list(RULES))
def test_diagnosis_names_the_planted_cause(demo, name):
    run = demo(name)
    if RULES[name] is None:
        assert _diagnosis(run.document) == []
    else:
        _expect_rule(run.document, RULES[name])
