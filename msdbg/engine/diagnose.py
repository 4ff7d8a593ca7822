"""diagnose: map hits (and graph patterns) to the accuracy guide's causes, with next steps.

Rules are data: an id, the cause in the guide's words, the guide section to read, advice, and a matcher that
returns the evidence (hits or node names) or nothing. Hits that no rule explains are reported as having no
known cause rather than guessed at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from msdbg.engine.hits import Hit
from msdbg.engine.losscurve import loss_symptoms
from msdbg.engine.loss import is_loss_value
from msdbg.engine.structure import (SIGMOID_LOSS_OPS, SOFTMAX_LOSS_OPS, activation_into_loss, broadcast_into_loss,
                                    constant_gradients, feeding_weights, integer_divisions, shared_weights)
from msdbg.store.graph import Graph

OVERFLOW_CONDITIONS = {"tensor_overflow", "weight_overflow", "gradient_exploding", "tensor_health"}
SATURATING_OPS = {"Sigmoid", "Tanh"}
GUIDE = "MindSpore accuracy guide (Accuracy Problem Locating and Optimization Guide)"


_NAN_FOLLOWERS = {"log_of_nonpositive", "division_by_zero", "sqrt_of_negative", "exp_overflow", "dead_relu",
                  "vanishing_gradients", "frozen_parameters", "no_parameter_updates", "learning_rate_too_high",
                  "saturated_activation", "loss_nonfinite", "loss_exploding"}
_LOSS_BLOWS_UP = {"loss_nonfinite", "loss_exploding"}
_LOSS_STALLS = {"loss_not_converging"}
#: A cause that, when found, likely produces these other findings as consequences.
CONSEQUENCES = {
    "zero_initialization": {"dead_relu", "vanishing_gradients", "frozen_parameters", "no_parameter_updates"},
    # identical output units of the last layer give every earlier layer a zero gradient (their deltas cancel)
    "symmetric_initialization": {"dead_relu", "vanishing_gradients", "no_gradient_path", "frozen_parameters",
                                 "no_parameter_updates"},
    "init_scale_saturates": {"saturated_activation", "vanishing_gradients", "frozen_parameters",
                             "no_parameter_updates"},
    "dead_relu": {"frozen_parameters", "vanishing_gradients", "no_parameter_updates"},
    "unnormalised_input": _NAN_FOLLOWERS,
    "vanishing_gradients": {"frozen_parameters", "no_parameter_updates"},
    "no_gradient_path": {"frozen_parameters", "no_parameter_updates"},
    "loss_scale_improper": {"no_parameter_updates", "frozen_parameters"},
    # NaN/Inf coming in with the data (or out of an out-of-range label) spreads through the network and its weights
    "missing_values_in_data": _NAN_FOLLOWERS,
    "wrong_labels": _NAN_FOLLOWERS,
    "abnormal_input": _NAN_FOLLOWERS | {"unnormalised_input"},
    "disconnected_parameter": {"frozen_parameters", "vanishing_gradients"},
    # the loss curve shows what these causes do
    "log_of_nonpositive": _LOSS_BLOWS_UP, "division_by_zero": _LOSS_BLOWS_UP, "sqrt_of_negative": _LOSS_BLOWS_UP,
    "exp_overflow": _LOSS_BLOWS_UP, "learning_rate_too_high": _LOSS_BLOWS_UP | {"loss_oscillating"},
    "learning_rate_too_low": _LOSS_STALLS, "frozen_parameters": _LOSS_STALLS, "no_parameter_updates": _LOSS_STALLS,
    # a loss that grows does not fall either
    "loss_exploding": _LOSS_STALLS,
}
for _root in ("zero_initialization", "symmetric_initialization", "init_scale_saturates", "dead_relu",
              "vanishing_gradients"):
    CONSEQUENCES[_root] = CONSEQUENCES[_root] | _LOSS_STALLS
#: Conditions that say a weight did not change.
UNCHANGED_CONDITIONS = {"weight_not_changed", "weight_frozen"}


@dataclass(frozen=True)
class Finding:
    """A rule that matched, with what it matched on, and the root cause it likely follows from, if any."""

    rule: "Rule"
    evidence: tuple[str, ...]
    consequence_of: str | None = None

    def to_json(self) -> dict:
        return {"rule": self.rule.id, "cause": self.rule.cause, "guide": self.rule.guide,
                "advice": list(self.rule.advice), "evidence": list(self.evidence),
                "consequence_of": self.consequence_of}


@dataclass(frozen=True)
class Rule:
    """A known cause: how to recognise it (``match`` returns evidence) and which hit conditions it explains."""

    id: str
    cause: str
    guide: str
    advice: tuple[str, ...]
    match: Callable[[list[Hit], list[Graph]], list[str]]
    explains: frozenset[str] = frozenset()


def _origins(hits: list[Hit], op_types: set[str]) -> list[str]:
    return sorted({f"{h.entry.op_type} {h.entry.node} (step {h.step})" for h in hits
                   if h.first_offending and h.condition in OVERFLOW_CONDITIONS and h.entry.op_type in op_types})


def _of(conditions: set[str], predicate: Callable[[Hit], bool] = lambda h: True) -> Callable:
    """Evidence: the tensors of hits of these conditions that really crossed a bound (not merely non-finite)."""
    def match(hits: list[Hit], graphs: list[Graph]) -> list[str]:
        return sorted({_name(h) for h in hits if h.condition in conditions and not h.nonfinite and predicate(h)})

    return match


def _name(hit: Hit) -> str:
    return hit.entry.param if hit.entry.category in ("weight", "gradient") and hit.entry.param else hit.entry.node


def _unchanged_weights(hits: list[Hit], graphs: list[Graph]) -> tuple[set[str], set[str]]:
    """The weights weight_not_changed hit, and every weight of the graphs."""
    frozen = {h.entry.param for h in hits if h.condition in UNCHANGED_CONDITIONS and h.entry.param}
    weights = {name for graph in graphs for name, category in graph.param_category.items() if category == "weight"}
    return frozen, weights


def _frozen(hits: list[Hit], graphs: list[Graph]) -> list[str]:
    """weight_not_changed on some weights while other weights do change."""
    frozen, weights = _unchanged_weights(hits, graphs)
    return sorted(frozen) if frozen and weights - frozen else []


def _all_frozen(hits: list[Hit], graphs: list[Graph]) -> list[str]:
    """weight_not_changed on every weight."""
    frozen, weights = _unchanged_weights(hits, graphs)
    return sorted(frozen) if frozen and weights and not weights - frozen else []


def _all_zero_gradient(hit: Hit) -> bool:
    """A gradient that is exactly 0 everywhere: nothing of the loss reaches the parameter."""
    stats = hit.stats
    return hit.entry.category == "gradient" and (
        stats.get("abs_mean") == 0.0 or (stats.get("zero") is not None and stats.get("zero") == stats.get("size")))


def _every_weight(conditions: set[str]) -> Callable:
    """Evidence: the weights these conditions hit at one step, when they are every weight of its graph."""
    def match(hits: list[Hit], graphs: list[Graph]) -> list[str]:
        weights = {name for graph in graphs for name, category in graph.param_category.items() if category == "weight"}
        by_step: dict[tuple, set[str]] = {}
        for hit in hits:
            if hit.condition in conditions and hit.entry.param and not hit.nonfinite:
                by_step.setdefault((hit.entry.step.rank, hit.entry.step.graph, hit.step), set()).add(hit.entry.param)
        return next((sorted(hit) for hit in by_step.values() if weights and weights <= hit), [])

    return match


def _vanishing(hits: list[Hit], graphs: list[Graph]) -> list[str]:
    vanishing = _of({"gradient_vanishing"}, lambda h: not _all_zero_gradient(h))(hits, graphs)
    if not vanishing:
        return []
    saturating = sorted({n.op_type for g in graphs for n in g.nodes.values() if n.op_type in SATURATING_OPS})
    return vanishing + [f"graph uses {', '.join(saturating)}"] if saturating else vanishing


def _not_all_zero(hit: Hit) -> bool:
    """A weight that is not all zero (an all-zero one is zero_initialization's)."""
    return hit.stats.get("zero") != hit.stats.get("size")


def _saturating_init(hits: list[Hit], graphs: list[Graph]) -> list[str]:
    """Sigmoid/Tanh saturated at the first step (activation_range), fed by a weight whose initial scale is far above
    He's (weight_init_scale, judged at that same step): the initialisation saturates the activation."""
    large = {(h.entry.step, h.entry.param): h for h in hits
             if h.condition == "weight_init_scale" and h.entry.param and not h.nonfinite}
    found = set()
    for hit in hits:
        node = hit.entry.graph_node
        if not large or hit.condition != "activation_range" or hit.entry.op_type not in SATURATING_OPS or node is None:
            continue
        graph = next((g for g in graphs if g.nodes.get(node.name) is node), None)
        for weight in feeding_weights(graph, node.name) if graph is not None else ():
            scale = large.get((hit.entry.step, weight))
            if scale is not None:
                found.add(f"{hit.entry.op_type} {hit.entry.node} saturated at step {hit.step}, fed by {weight}: "
                          f"{scale.reasons[0]}")
    return sorted(found)


def _is_loss(hit: Hit) -> bool:
    return is_loss_value(hit.entry, hit.stats.get("size"))


def _from_curve(hits: list[Hit], graphs: list[Graph]) -> list[str]:
    """Loss-curve rules have no evidence in hits or graphs: diagnose() adds the curve's."""
    return []


def _data_origins(hits: list[Hit], graphs: list[Graph]) -> list[str]:
    """NaN/Inf whose origin is the data fed to the graph, with the bad samples when known."""
    return sorted({f"{_name(h)} (step {h.step}){_samples(h)}" for h in hits
                   if h.first_offending and h.condition in OVERFLOW_CONDITIONS and h.entry.category == "input"})


def _samples(hit: Hit) -> str:
    return next((f": {reason}" for reason in hit.reasons if reason.startswith("NaN/Inf in sample")), "")


_NAN_SECTION = "Checking the Loss Curve: an abnormal loss value (NaN, +/-INF); Common Causes: API computation"
RULES: tuple[Rule, ...] = (
    Rule("log_of_nonpositive", "API computation: Log of 0 or a negative number gives -inf/NaN", _NAN_SECTION,
         ("the input of Log reaches 0 (or below): add a small epsilon, log(x + 1e-8), or clamp it",
          "for probabilities use log_softmax (nn.LogSoftmax) instead of log(softmax(x))",
          "check the input data for zeros or missing values recorded as 0"),
         lambda hits, graphs: _origins(hits, {"Log", "Log1p"}),
         explains=frozenset(OVERFLOW_CONDITIONS)),
    Rule("division_by_zero", "API computation: a division by zero gives Inf or NaN (0/0)", _NAN_SECTION,
         ("the divisor reaches 0: add an epsilon to it (x / (s + 1e-8)) or guard the all-zero case",
          "check hand-written normalisations (x / x.sum(), x / x.std()) and the rows of data they see"),
         lambda hits, graphs: _origins(hits, {"RealDiv", "Div", "FloorDiv", "Reciprocal"}),
         explains=frozenset(OVERFLOW_CONDITIONS)),
    Rule("sqrt_of_negative", "API computation: Sqrt/Rsqrt of a negative number or 0", _NAN_SECTION,
         ("clamp the input to a small positive value before Sqrt/Rsqrt, or add an epsilon",),
         lambda hits, graphs: _origins(hits, {"Sqrt", "Rsqrt"}),
         explains=frozenset(OVERFLOW_CONDITIONS)),
    Rule("exp_overflow", "API computation: Exp of a large value overflows", _NAN_SECTION,
         ("use numerically stable forms (log-sum-exp, softmax with max subtracted)",
          "check the learning rate: growing activations often come from too large updates"),
         lambda hits, graphs: _origins(hits, {"Exp"}),
         explains=frozenset(OVERFLOW_CONDITIONS)),
    Rule("learning_rate_too_high", "Hyperparameters: the learning rate is too high, updates explode",
         "Hyperparameter Optimization: Selection and Optimization of Learning Rates",
         ("lower the learning rate (by 10x to start), or add warm-up",
          "clip gradients (ops.clip_by_global_norm) to bound single bad steps"),
         _of({"weight_change_too_large", "gradient_too_large"}),
         explains=frozenset(OVERFLOW_CONDITIONS | {"weight_change_too_large", "gradient_too_large", "tensor_too_large"})),
    Rule("vanishing_gradients", "Weight initialisation / activation choice: gradients vanish in early layers",
         "Checking the Loss Curve: gradient explosion and disappearance; Selection and Optimization of Initial "
         "Weight Values; of Activation Functions",
         ("initialise with XavierUniform/HeUniform instead of tiny normals",
          "replace Sigmoid/Tanh in deep stacks by ReLU, or add BatchNorm / residual connections"),
         _vanishing,
         explains=frozenset({"gradient_vanishing"})),
    Rule("dead_relu", "Activation saturation: a ReLU outputs only zeros, its layer no longer learns",
         "Checking the Loss Curve: the activation value is saturated or too weak",
         ("check the bias initialisation and the inputs of the layer before the ReLU",
          "lower the learning rate; consider LeakyReLU"),
         _of({"activation_range", "tensor_all_zero"}, lambda h: h.entry.op_type == "ReLU"),
         explains=frozenset({"activation_range", "tensor_all_zero"})),
    Rule("saturated_activation", "Activation saturation: Sigmoid/Tanh outputs sit at their flat ends",
         "Checking the Loss Curve: the activation value is saturated or too weak",
         ("normalise the inputs of the layer; lower initial weights' scale or the learning rate",
          "prefer ReLU-family activations in hidden layers"),
         _of({"activation_range"}, lambda h: h.entry.op_type in SATURATING_OPS),
         explains=frozenset({"activation_range"})),
    Rule("frozen_parameters", "Model structure: parameters improperly frozen, never updated",
         "Checking the Loss Curve: the weight is improperly frozen",
         ("these parameters are not updated: give them to the optimizer (net.trainable_params())",
          "check requires_grad=False and stop_gradient on their path"),
         _frozen,
         explains=frozenset(UNCHANGED_CONDITIONS)),
    Rule("no_parameter_updates", "Hyperparameters / optimizer: no weight changes at all",
         "Checking the Loss Curve: weight change below threshold",
         ("check that the optimizer is called each step and the learning rate is not 0",),
         _all_frozen,
         explains=frozenset(UNCHANGED_CONDITIONS)),
    Rule("no_gradient_path", "Model structure: no gradient path to this parameter (output unused / detached / "
         "frozen): its gradient is exactly 0",
         "Checking the Code and Hyperparameters: the network structure; Common Causes: the weight is improperly "
         "frozen",
         ("check that the output of the layer holding it reaches the loss (e.g. the reverse half of a "
          "bidirectional LSTM whose output is sliced away, a head that is computed but not used)",
          "look for ops.stop_gradient, .asnumpy()/Tensor(...) round trips or requires_grad=False on its path"),
         _of({"gradient_vanishing", "tensor_all_zero", "tensor_too_small"}, _all_zero_gradient),
         explains=frozenset({"gradient_vanishing"} | UNCHANGED_CONDITIONS)),
    Rule("loss_scale_improper", "Hyperparameters: the loss_scale is set improperly: the dynamic loss scale keeps "
         "falling, or most steps are skipped",
         "Checking the Code and Hyperparameters: the loss_scale is set improperly",
         ("start from a lower loss scale (e.g. 2**16 instead of 2**24) or use a larger scale_window",
          "if the scale falls at every step, gradients overflow in float16 even unscaled: look for a NaN/Inf in "
          "the forward pass (watch tensor_overflow), or keep the overflowing layers in float32 (amp custom lists)"),
         _of({"loss_scale_improper"}),
         explains=frozenset({"loss_scale_improper"})),
    Rule("zero_initialization", "Weight initialisation: a weight starts all zero, its units stay identical",
         "Common Tuning Suggestions: Selection and Optimization of Initial Weight Values",
         ("initialise weights with HeUniform/XavierUniform (biases at zero are fine)",),
         _of({"weight_initialization"}),
         explains=frozenset({"weight_initialization", "weight_symmetric", "gradient_vanishing", "weight_not_changed",
                             "weight_frozen"})),
    Rule("symmetric_initialization", "Weight initialisation: a weight starts with identical output units (a "
         "constant), symmetry is not broken: with equal biases the units get identical gradients and stay identical",
         "Common Tuning Suggestions: Selection and Optimization of Initial Weight Values",
         ("initialise weights with random values (HeUniform/XavierUniform, MindSpore's default), not a constant "
          "such as 'ones' or Constant(c) (biases and BatchNorm gamma/beta at a constant are fine)",),
         _of({"weight_symmetric"}, _not_all_zero),
         explains=frozenset({"weight_symmetric", "gradient_vanishing", "weight_not_changed", "weight_frozen"})),
    Rule("init_scale_saturates", "Weight initialisation: initial weights far larger than usual saturate the "
         "Sigmoid/Tanh after them from the first step",
         "Common Tuning Suggestions: Selection and Optimization of Initial Weight Values; Checking the Loss Curve: "
         "the activation value is saturated",
         ("initialise the layer with HeUniform/XavierUniform (std about sqrt(2/fan_in)) or a Normal of that sigma",
          "or normalise before the activation (BatchNorm, LayerNorm)"),
         _saturating_init,
         explains=frozenset({"weight_init_scale", "activation_range"})),
    Rule("unnormalised_input", "Data: input features are not normalised (very large values)",
         "Data Optimization: Normalizing Data; Checking the Input Data",
         ("standardise each feature (subtract the mean, divide by the std) before training",),
         _of({"tensor_too_large", "tensor_range", "input_too_large"}, lambda h: h.entry.category == "input"),
         explains=frozenset({"tensor_too_large", "tensor_range", "input_too_large"})),
    Rule("abnormal_input", "Dataset: a batch holds abnormal values, far outside the range of earlier batches",
         "Checking the Input Data; Accuracy Checklist: the dataset contains abnormal values",
         ("inspect the samples of that batch (print the input at that step) and the data pipeline that made them",),
         _of({"input_turbulence"}),
         explains=frozenset({"input_turbulence"})),
    Rule("learning_rate_too_low", "Hyperparameters: the learning rate is too low, every weight barely changes",
         "Hyperparameter Optimization: Selection and Optimization of Learning Rates; Checking the Loss Curve: "
         "slow convergence",
         ("raise the learning rate (by 10x to start) or shorten the warm-up",
          "check the learning-rate schedule: a decay that reaches ~0 too early stops training"),
         _every_weight({"weight_change_too_small"}),
         explains=frozenset({"weight_change_too_small"})),
    Rule("sigmoid_into_logits_loss", "Algorithm / API misuse: a Sigmoid output fed to a loss that applies sigmoid",
         "Checking the Code and Hyperparameters: the loss function is correctly implemented",
         ("remove the Sigmoid before BCEWithLogitsLoss (it expects logits), or use BCELoss on probabilities",),
         lambda hits, graphs: activation_into_loss(graphs, "Sigmoid", SIGMOID_LOSS_OPS),
         explains=frozenset(set())),
    Rule("softmax_into_logits_loss", "Algorithm / API misuse: a Softmax output fed to a loss that applies softmax",
         "Checking the Model Structure: the loss function is incorrect",
         ("remove the Softmax before SoftmaxCrossEntropyWithLogits / CrossEntropyLoss (they expect logits); "
          "keep it only for inference",),
         lambda hits, graphs: activation_into_loss(graphs, "Softmax", SOFTMAX_LOSS_OPS),
         explains=frozenset(set())),
    Rule("shared_weight", "Model structure: a weight is shared by layers that should each have their own",
         "Checking the Loss Curve: the weight is improperly shared",
         ("one layer instance is used in several places ([layer] * n, or the same Cell assigned twice): create a "
          "new Cell for each place",
          "if the sharing is intended (tied weights, siamese branches), nothing is wrong"),
         lambda hits, graphs: shared_weights(graphs),
         explains=frozenset(set())),
    Rule("disconnected_parameter", "Model structure: a node is improperly connected, no gradient reaches its "
         "parameters", "Checking the Model Structure; Accuracy Checklist: the node is improperly connected",
         ("the output that uses these parameters never reaches the loss (computed and dropped, or detached with "
          "ops.stop_gradient): connect it, or remove the layer and its parameters from the optimizer",),
         lambda hits, graphs: constant_gradients(graphs),
         explains=frozenset(UNCHANGED_CONDITIONS | {"gradient_vanishing", "tensor_all_zero"})),
    Rule("missing_values_in_data", "Dataset: the input data contains missing or abnormal values (NaN/Inf)",
         "Checking the Input Data; Accuracy Checklist: the dataset contains too many missing values",
         ("clean the dataset: drop or impute the samples named in the evidence",
          "check the data pipeline (decoding, division by a zero std in normalisation) for the samples named"),
         _data_origins,
         explains=frozenset(OVERFLOW_CONDITIONS)),
    Rule("wrong_labels", "Dataset: labels outside the class range of the loss (wrong labels or wrong class count)",
         "Accuracy Checklist: the label of the data is incorrect",
         ("labels must be 0 .. classes-1: check the label mapping (1-based labels?) and the network's output size",),
         _of({"label_out_of_range"}),
         explains=frozenset(OVERFLOW_CONDITIONS | {"label_out_of_range"})),
    Rule("class_imbalance", "Dataset: the number of samples in each class is unbalanced",
         "Data Optimization: Ensuring a Balanced Number of Samples in Each Class",
         ("resample (oversample rare classes, undersample common ones) or weight the loss per class",),
         _of({"label_imbalance"}),
         explains=frozenset({"label_imbalance"})),
    Rule("unshuffled_data", "Data processing: the dataset is not shuffled (batches sorted by class)",
         "Accuracy Checklist: the dataset is not shuffled",
         ("shuffle the dataset (GeneratorDataset(..., shuffle=True) or dataset.shuffle(buffer_size))",),
         _of({"label_unshuffled"}),
         explains=frozenset({"label_unshuffled"})),
    Rule("rank_weight_mismatch", "Multi-device training: data-parallel replicas hold different weights",
         "Tuning Suggestions for Multi-Device Training: Ensuring that the Initial Weight of Data Parallelism Is the "
         "Same for Each Channel",
         ("set the same seed on every rank (ms.set_seed) before building the network, or load one checkpoint",
          "if weights match at the first step and drift later, check that every rank applies the same update"),
         _of({"rank_weight_mismatch"}),
         explains=frozenset({"rank_weight_mismatch"})),
    Rule("rank_gradient_mismatch", "Multi-device training: gradients are not the same on every rank after reduction",
         "Tuning Suggestions for Multi-Device Training",
         ("reduce gradients across ranks (nn.DistributedGradReducer, or parallel_mode=DATA_PARALLEL with "
          "Model/TrainOneStepCell), and check gradients_mean",),
         _of({"rank_gradient_mismatch"}),
         explains=frozenset({"rank_gradient_mismatch"})),
    Rule("broadcast_into_loss", "Loss function incorrectly implemented: two tensors of different shapes were "
         "broadcast into a larger one that feeds the loss (a likely shape bug)",
         "Checking the Code and Hyperparameters: the loss function is correctly implemented (Common Computational "
         "Graph Structure Problems: the loss function is incorrect)",
         ("make the shapes agree before the op: reshape labels to the predictions' shape (y.reshape(-1, 1)) or "
          "squeeze the predictions (pred.squeeze(-1))",
          "with (N, 1) and (N,) the loss compares every prediction with every label: it barely falls and its "
          "gradients mix samples",
          "'node NODE' shows the op's input shapes"),
         lambda hits, graphs: broadcast_into_loss(graphs),
         explains=frozenset(set())),
    Rule("loss_zero", "Data: loss is (nearly) 0 at once: label leakage, or the task is trivial",
         "Checking the Loss Curve: other loss symptoms (loss 0)",
         ("check that labels (or a function of them) are not among the input features",
          "check that training and evaluation data do not overlap"),
         _of({"tensor_all_zero", "tensor_too_small"}, _is_loss),
         explains=frozenset({"tensor_all_zero", "tensor_too_small"})),
    # Loss-curve symptoms: their evidence comes from the loss of every step (engine/losscurve.py), not from hits.
    Rule("loss_nonfinite", "Loss curve: the loss is NaN or +/-Inf", _NAN_SECTION,
         ("set 'watch tensor_overflow' and run again: trace-back names the first op that produced the NaN/Inf",),
         _from_curve),
    Rule("loss_exploding", "Loss curve: the loss grows far above its early values",
         "Checking the Loss Curve: an abnormal loss value (extremely large)",
         ("'watch tensor_too_large' and 'watch weight_change_too_large' locate the op or update that grows",
          "lower the learning rate or clip gradients"),
         _from_curve),
    Rule("loss_not_converging", "Loss curve: the loss does not fall (slow or no convergence)",
         "Checking the Loss Curve: the loss convergence is slow",
         ("'watch weight_change_too_small' and 'watch gradient_vanishing' show whether the weights still learn",
          "check the learning rate (too low?), the optimizer and the loss function",
          "check the input range (too small?) and whether the labels match the inputs"),
         _from_curve),
    Rule("loss_oscillating", "Loss curve: the loss zigzags instead of falling (flapping)",
         "Checking the Loss Curve: the loss convergence is slow (loss flapping)",
         ("lower the learning rate, or increase the batch size", "check that the data is shuffled"),
         _from_curve),
    Rule("integer_division", "API misuse: an integer division (the quotient floored) where a float division was "
         "meant", "Checking the Model Structure: the API is improperly used (floating-point division should be "
         "used, but integer division is used)",
         ("`//` (and ops.floor_div) on integer tensors floors the quotient: cast to float first and divide with `/`, "
          "e.g. ops.cast(x, ms.float32) / 255",
          "if the floor is intended (bucketing, coarse labels), nothing is wrong"),
         lambda hits, graphs: integer_divisions(graphs),
         explains=frozenset(set())),
)


def diagnose(hits: list[Hit], graphs: Iterable[Graph], losses: list[tuple[int, float]] = ()
             ) -> tuple[list[Finding], list[str]]:
    """Findings of every matching rule, and the hit conditions no rule explains ("no known cause").

    A rule's evidence comes from the hits and graphs (its matcher) and from the loss curve: the symptoms of
    ``losses`` (training step, loss) that carry its id."""
    graph_list = list(graphs)
    curve: dict[str, list[str]] = {}
    for symptom in loss_symptoms(list(losses)):
        curve.setdefault(symptom.rule, []).append(symptom.text)
    matched = [(rule, tuple(evidence)) for rule in RULES
               if (evidence := [*rule.match(hits, graph_list), *curve.get(rule.id, ())])]
    ids = [rule.id for rule, _ in matched]
    findings = [Finding(rule, evidence, _root_of(rule.id, ids)) for rule, evidence in matched]
    findings.sort(key=lambda f: f.consequence_of is not None)
    explained = set().union(*(f.rule.explains for f in findings))
    nan_origin_found = "tensor_overflow" in explained  # then NaN/Inf crossing other bounds follows from it
    unexplained = sorted({h.condition for h in hits
                          if h.condition not in explained and (not h.nonfinite or not nan_origin_found)})
    return findings, unexplained


def _root_of(rule_id: str, found: list[str]) -> str | None:
    """Another found cause that commonly produces this one."""
    return next((root for root in found if root != rule_id and rule_id in CONSEQUENCES.get(root, ())), None)


def format_findings(findings: list[Finding], unexplained: list[str]) -> list[str]:
    """Text for the prompt and reports."""
    lines = []
    for finding in findings:
        rule = finding.rule
        lines.append(f"cause [{rule.id}]: {rule.cause}")
        if finding.consequence_of:
            lines.append(f"  (likely a consequence of [{finding.consequence_of}])")
        shown = finding.evidence[:5]
        lines.append(f"  evidence: {'; '.join(shown)}{' ...' if len(finding.evidence) > 5 else ''}")
        lines.extend(f"  try: {advice}" for advice in rule.advice)
        lines.append(f"  read: {GUIDE}, {rule.guide}")
    if unexplained:
        lines.append(f"no known cause for hits of: {', '.join(unexplained)}")
    return lines or ["No hits, nothing to diagnose."]
