"""Watchpoint conditions as data: name, target categories, parameters, and a few generic evaluators.

Parameter names carry their comparison in the suffix (``_gt``, ``_lt``, ``_ge``, ``_le``), as in MindInsight.
A watchpoint with several bound parameters hits when any one of them holds. A tensor holding NaN or
Inf never passes a bound silently: the condition hits and the reason says the tensor is not finite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from msdbg.engine.initweights import scale_reason, std_ratio
from msdbg.engine.stats import TensorStats
from msdbg.numeric import ANY_NUMBER, COUNT, NON_NEGATIVE, PERCENTAGE, POSITIVE_COUNT, Range

ANY = None
WEIGHT = frozenset({"weight"})
OPTIMIZER_STATE = frozenset({"optimizer_state"})
GRADIENT = frozenset({"gradient"})
ACTIVATION = frozenset({"activation"})
INPUT = frozenset({"input"})

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "gt": lambda value, bound: value > bound,
    "lt": lambda value, bound: value < bound,
    "ge": lambda value, bound: value >= bound,
    "le": lambda value, bound: value <= bound,
}
_SYMBOL = {"gt": ">", "lt": "<", "ge": ">=", "le": "<="}
UPDATE_RATIO_EPSILON = 1e-9


@dataclass(frozen=True)
class ParamSpec:
    """A watchpoint parameter: the derived statistic it bounds (or a setting when ``statistic`` is None)."""

    name: str
    statistic: str | None = None
    default: float | None = None
    valid: Range = ANY_NUMBER  # the values accepted when a watchpoint is created

    @property
    def compare(self) -> str:
        return self.name.rsplit("_", 1)[1]


@dataclass(frozen=True)
class Verdict:
    """The outcome of one condition on one tensor."""

    hit: bool
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Condition:
    """One watchpoint condition.

    ``kind`` selects the evaluator: ``overflow`` (any NaN/Inf), ``bounds`` (derived statistics against the
    parameters), ``unchanged`` (all elements within rtol/atol of the previous step), ``health`` (counts).
    ``needs_previous``: compares with the same tensor at the previous step. ``initial``: looks at weights
    before the first update only. ``needs_range``: counts elements in [range_start, range_end].
    """

    name: str
    description: str
    targets: frozenset[str] | None
    kind: str
    params: tuple[ParamSpec, ...] = ()
    needs_previous: bool = False
    initial: bool = False
    needs_range: bool = False
    history: bool = False  # needs the running averages of past steps (tensor_turbulence)
    mean_jumps: bool = True  # turbulence: |mean| jumps count too (not for data batches, whose mean is noise)
    cross_rank: bool = False  # compares the same tensor across ranks at one step (msdbg.engine.crossrank)
    per_step: bool = False  # judged once per training step, not per tensor (msdbg.engine.lossscale)
    trained_only: bool = False  # only parameters an optimizer of the step's graphs updates
    labels: bool = False  # judged on the class labels a loss reads, not on statistics (msdbg.engine.data)
    available: bool = True
    unavailable_reason: str = ""

    def param(self, name: str) -> ParamSpec | None:
        return next((p for p in self.params if p.name == name), None)

    @property
    def bounds(self) -> tuple[ParamSpec, ...]:
        return tuple(p for p in self.params if p.statistic is not None)

    def applies_to(self, category: str) -> bool:
        return self.targets is None or category in self.targets

    def defaults(self, given: dict[str, float]) -> dict[str, float]:
        """Parameter values with defaults filled in: settings always, bounds only when none was given."""
        values = dict(given)
        any_bound = any(self.param(n) is not None and self.param(n).statistic for n in given)
        for spec in self.params:
            if spec.name in values or spec.default is None:
                continue
            if spec.statistic is None or not any_bound:
                values[spec.name] = spec.default
        return values

    def stat_needs(self, params: dict[str, float]) -> set[str]:
        """The raw statistics (stats.STAT_NAMES) this condition needs with these parameter values."""
        needs = {"nonfinite"}
        if self.kind == "health":
            needs |= {"nan", "pos_inf", "neg_inf", "zero", "neg", "pos"}
        if self.kind == "unchanged" or self.needs_previous:
            needs.add("change")
        if self.kind == "turbulence":
            needs |= {"sq_sum", "sum", "finite_count"}
        if self.kind == "symmetric":
            needs |= {"identical_rows", "zero"}
        for name in params:
            spec = self.param(name)
            if spec is not None and spec.statistic:
                needs |= _RAW_NEEDS[spec.statistic]
        return needs

    def evaluate(self, stats: TensorStats, params: dict[str, float]) -> Verdict:
        return _EVALUATORS[self.kind](self, stats, params)


# Derived statistics a bound can name, and the raw statistics they are computed from.
_RAW_NEEDS: dict[str, set[str]] = {
    "abs_mean": {"abs_sum", "finite_count"},
    "mean": {"sum", "finite_count"},
    "max": {"max"},
    "min": {"min"},
    "zero_percentage": {"zero"},
    "range_percentage": {"range_count"},
    "max_min": {"max", "min"},
    "update_ratio": {"change"},
    "norm": {"sq_sum"},
    "init_std_ratio": {"sum", "sq_sum", "finite_count"},
    "nan": {"nan"},
    "pos_inf": {"pos_inf"},
    "neg_inf": {"neg_inf"},
    "zero": {"zero"},
    "neg": {"neg"},
    "pos": {"pos"},
}


def derived(stats: TensorStats, statistic: str) -> float | None:
    """The value of a derived statistic, or None when the tensor has no finite element to compute it on."""
    size = stats.size
    if statistic == "abs_mean":
        return stats.abs_mean
    if statistic == "mean":
        return stats.mean
    if statistic == "max":
        return stats.max
    if statistic == "min":
        return stats.min
    if statistic == "zero_percentage":
        return 100.0 * stats.zero / size if size else None
    if statistic == "range_percentage":
        return 100.0 * stats.range_count / size if size else None
    if statistic == "max_min":
        return None if stats.max is None or stats.min is None else stats.max - stats.min
    if statistic == "update_ratio":
        if stats.change_abs_sum is None or not size:
            return None
        return (stats.change_abs_sum / size) / (stats.prev_abs_sum / size + UPDATE_RATIO_EPSILON)
    if statistic == "norm":
        return stats.l2norm
    if statistic == "init_std_ratio":
        return std_ratio(stats.sum, stats.sq_sum, stats.finite_count, stats.shape)
    return float(getattr(stats, statistic))


def _nonfinite_reason(stats: TensorStats) -> str:
    parts = [f"{name}={count}" for name, count in
             (("nan", stats.nan), ("+inf", stats.pos_inf), ("-inf", stats.neg_inf)) if count]
    return f"not finite: {', '.join(parts)} of {stats.size} elements"


def _overflow(condition: Condition, stats: TensorStats, params: dict[str, float]) -> Verdict:
    if not stats.nonfinite_count:
        return Verdict(False)
    return Verdict(True, (_nonfinite_reason(stats),))


def _bounds(condition: Condition, stats: TensorStats, params: dict[str, float],
            nonfinite_hits: bool = True) -> Verdict:
    reasons = []
    if nonfinite_hits and stats.nonfinite_count:
        reasons.append(_nonfinite_reason(stats) + "; bounds cannot pass")
    for spec in condition.bounds:
        if spec.name not in params:
            continue
        value = derived(stats, spec.statistic)
        if value is None or math.isnan(value):
            continue
        if _COMPARE[spec.compare](value, params[spec.name]):
            reasons.append(f"{spec.statistic} {value:.6g} {_SYMBOL[spec.compare]} {params[spec.name]:g} ({spec.name})")
    return Verdict(bool(reasons), tuple(reasons))


def _symmetric(condition: Condition, stats: TensorStats, params: dict[str, float]) -> Verdict:
    if not stats.identical_rows:
        return Verdict(False)
    return Verdict(True, (f"all {stats.shape[0]} rows (output units) of shape {tuple(stats.shape)} are identical",))


def _init_scale(condition: Condition, stats: TensorStats, params: dict[str, float]) -> Verdict:
    """As ``bounds``, with the reason in the weight's terms: its std against sqrt(2/fan_in)."""
    verdict = _bounds(condition, stats, params)
    if not verdict.hit or stats.nonfinite_count:
        return verdict
    reason = scale_reason(stats.sum, stats.sq_sum, stats.finite_count, stats.shape)
    return Verdict(True, (f"{reason}; std_ratio_gt {params['std_ratio_gt']:g}",))


def _unchanged(condition: Condition, stats: TensorStats, params: dict[str, float]) -> Verdict:
    if stats.change_exceed is None or stats.size == 0:
        return Verdict(False)
    if stats.change_exceed == 0:
        return Verdict(True, (f"all {stats.size} elements within atol {params['atol']:g} + rtol {params['rtol']:g}"
                              " of the previous step",))
    return Verdict(False)


def _health(condition: Condition, stats: TensorStats, params: dict[str, float]) -> Verdict:
    """With no bound, any NaN/Inf hits. With count bounds, they decide; NaN/Inf still hit (never pass silently)
    unless the watchpoint bounds a NaN/Inf count itself, whose threshold then says how many are too many."""
    if not any(spec.name in params for spec in condition.bounds):
        return _overflow(condition, stats, params)
    counts_nonfinite = any(name in params for name in _NONFINITE_COUNT_BOUNDS)
    return _bounds(condition, stats, params, nonfinite_hits=not counts_nonfinite)


# tensor_turbulence's spike test needs the running average (history.History.judge_turbulence), and the label
# conditions read the label values (msdbg.engine.data); on their own they only say whether a tensor is finite.
def _judged_per_step(condition: Condition, stats: TensorStats, params: dict[str, float]) -> Verdict:
    """weight_frozen compares digests per tensor (evaluate.py) and is judged over the step (engine/frozen.py);
    loss_scale_improper is judged per step from the scale's history (engine/lossscale.py)."""
    return Verdict(False)


_EVALUATORS = {"overflow": _overflow, "bounds": _bounds, "unchanged": _unchanged, "health": _health,
               "turbulence": _overflow, "labels": _overflow, "frozen": _judged_per_step,
               "loss_scale": _judged_per_step, "symmetric": _symmetric, "init_scale": _init_scale}


def _value_bounds(kind: str) -> tuple[ParamSpec, ...]:
    suffix = "gt" if kind == "large" else "lt"
    return (ParamSpec(f"abs_mean_{suffix}", "abs_mean"), ParamSpec(f"max_{suffix}", "max"),
            ParamSpec(f"min_{suffix}", "min"), ParamSpec(f"mean_{suffix}", "mean"))


_RANGE = (ParamSpec("range_start_inclusive"), ParamSpec("range_end_inclusive"),
          ParamSpec("range_percentage_lt", "range_percentage", valid=PERCENTAGE),
          ParamSpec("range_percentage_gt", "range_percentage", valid=PERCENTAGE),
          ParamSpec("max_min_lt", "max_min"), ParamSpec("max_min_gt", "max_min"))
_BETA = Range(low=0, high=1, low_open=True, high_open=True)
_NONFINITE_COUNT_BOUNDS = ("nan_count_gt", "pos_inf_count_gt", "neg_inf_count_gt")
_HEALTH = tuple(ParamSpec(f"{name}_count_gt", name, valid=NON_NEGATIVE)
                for name in ("nan", "pos_inf", "neg_inf", "zero", "neg", "pos"))
_UNAVAILABLE_OVERFLOW = ("operator_overflow reads the overflow dumps Ascend writes for ops that overflowed; CPU and "
                         "GPU write none, so use tensor_overflow (NaN/Inf in any tensor) there")

CONDITIONS: dict[str, Condition] = {
    c.name: c
    for c in (
        Condition("weight_initialization", "weights before the first update: all zero, or outside bounds", WEIGHT,
                  "bounds", (ParamSpec("zero_percentage_ge", "zero_percentage", 100.0, PERCENTAGE),
                             ParamSpec("max_gt", "max"), ParamSpec("min_lt", "min")), initial=True, trained_only=True),
        Condition("weight_symmetric", "weights before the first update whose output units (rows along the first "
                  "axis; 2 axes or more, 2 rows or more) are all identical: a constant initialisation, symmetry not "
                  "broken", WEIGHT, "symmetric", initial=True, trained_only=True),
        Condition("weight_init_scale", "weights before the first update whose standard deviation is above "
                  "std_ratio_gt x sqrt(2/fan_in), He initialisation's (fan_in: the product of all axes but the "
                  "first)", WEIGHT, "init_scale",
                  (ParamSpec("std_ratio_gt", "init_std_ratio", 4.0, NON_NEGATIVE),), initial=True, trained_only=True),
        Condition("weight_overflow", "NaN or +/-Inf in a weight", WEIGHT, "overflow"),
        Condition("gradient_exploding", "NaN or +/-Inf in a gradient", GRADIENT, "overflow"),
        Condition("tensor_overflow", "NaN or +/-Inf in any tensor", ANY, "overflow"),
        Condition("weight_too_large", "a weight's statistics above bounds", WEIGHT, "bounds", _value_bounds("large")),
        Condition("gradient_too_large", "a gradient's statistics above bounds", GRADIENT, "bounds",
                  _value_bounds("large")),
        Condition("tensor_too_large", "a tensor's statistics above bounds", ANY, "bounds", _value_bounds("large")),
        Condition("weight_too_small", "a weight's statistics below bounds", WEIGHT, "bounds", _value_bounds("small")),
        Condition("gradient_vanishing", "a gradient's statistics below bounds", GRADIENT, "bounds",
                  _value_bounds("small")),
        Condition("tensor_too_small", "a tensor's statistics below bounds", ANY, "bounds", _value_bounds("small")),
        Condition("tensor_all_zero", "at least zero_percentage_ge percent of elements are 0", ANY, "bounds",
                  (ParamSpec("zero_percentage_ge", "zero_percentage", 100.0, PERCENTAGE),)),
        Condition("weight_not_changed", "every element within atol + rtol*|prev| of the previous step", WEIGHT,
                  "unchanged", (ParamSpec("rtol", None, 1e-5, NON_NEGATIVE), ParamSpec("atol", None, 1e-8, NON_NEGATIVE)),
                  needs_previous=True),
        Condition("weight_frozen", "a weight unchanged (same bytes) over steps_ge training steps in which the "
                  "weights an optimizer updates changed: left out of the optimizer, requires_grad=False, or no "
                  "gradient reaches it", WEIGHT, "frozen",
                  (ParamSpec("steps_ge", None, 3.0, POSITIVE_COUNT),)),
        Condition("loss_scale_improper", "a dynamic loss scale set improperly: it fell at consecutive_skips_ge "
                  "steps in a row, or more than skipped_percentage_gt percent of the steps were skipped once steps_ge "
                  "steps ran", OPTIMIZER_STATE, "loss_scale",
                  (ParamSpec("consecutive_skips_ge", None, 16.0, POSITIVE_COUNT),
                   ParamSpec("skipped_percentage_gt", None, 50.0, PERCENTAGE),
                   ParamSpec("steps_ge", None, 32.0, POSITIVE_COUNT)), per_step=True),
        Condition("weight_change_too_large", "mean|cur-prev| / mean|prev| above the bound", WEIGHT, "bounds",
                  (ParamSpec("abs_mean_update_ratio_gt", "update_ratio", 0.1, NON_NEGATIVE),), needs_previous=True),
        Condition("weight_change_too_small", "mean|cur-prev| / mean|prev| below the bound", WEIGHT, "bounds",
                  (ParamSpec("abs_mean_update_ratio_lt", "update_ratio", 1e-4, NON_NEGATIVE),), needs_previous=True),
        Condition("activation_range", "share of an activation inside [start, end], or its max-min spread",
                  ACTIVATION, "bounds", _RANGE, needs_range=True),
        Condition("tensor_range", "share of a tensor inside [start, end], or its max-min spread", ANY, "bounds",
                  _RANGE, needs_range=True),
        Condition("tensor_health", "element counts (nan, +inf, -inf, zero, negative, positive) above bounds; "
                  "with no bound, any NaN/Inf", ANY, "health", _HEALTH),
        Condition("tensor_turbulence", "norm or |mean| jumps above (1+threshold) x its running average (EMA with "
                  "factor beta, after warmup steps): loss and gradient spikes", ANY, "turbulence",
                  (ParamSpec("threshold", None, 1.0, NON_NEGATIVE), ParamSpec("beta", None, 0.99, _BETA),
                   ParamSpec("warmup", None, 3.0, COUNT)),
                  history=True),
        Condition("rank_weight_mismatch", "a weight differs between ranks at the same step (at the first step: "
                  "different initial weights, no common seed or checkpoint)", WEIGHT, "cross_rank",
                  (ParamSpec("max_abs_diff_gt", "max_abs_diff", 0.0, NON_NEGATIVE),), cross_rank=True),
        Condition("rank_gradient_mismatch", "the (all-reduced) gradient of a parameter differs between ranks "
                  "at the same step, in data-parallel training", GRADIENT, "cross_rank",
                  (ParamSpec("max_abs_diff_gt", "max_abs_diff", 0.0, NON_NEGATIVE),), cross_rank=True),
        Condition("input_too_large", "a data input's statistics above bounds: features not normalised", INPUT,
                  "bounds", _value_bounds("large")),
        Condition("input_turbulence", "a data batch whose norm jumps above (1+threshold) x the running "
                  "average of earlier batches: abnormal values in the data", INPUT, "turbulence",
                  (ParamSpec("threshold", None, 3.0, NON_NEGATIVE), ParamSpec("beta", None, 0.9, _BETA),
                   ParamSpec("warmup", None, 3.0, COUNT)), history=True, mean_jumps=False),
        Condition("label_out_of_range", "class labels outside [0, classes) of the loss (or OneHot) reading them",
                  INPUT, "labels", labels=True),
        Condition("label_imbalance", "over the run so far (after min_steps batches) a class holds under "
                  "class_percentage_lt percent of the labels", INPUT, "labels",
                  (ParamSpec("class_percentage_lt", None, 1.0, PERCENTAGE), ParamSpec("min_steps", None, 10.0, COUNT)),
                  labels=True),
        Condition("label_unshuffled", "single_class_steps_ge batches in a row each hold one class only (data sorted "
                  "by label)", INPUT, "labels", (ParamSpec("single_class_steps_ge", None, 3.0, COUNT),),
                  labels=True),
        Condition("operator_overflow", "an op overflowed (Ascend overflow dump)", ANY, "overflow",
                  available=False, unavailable_reason=_UNAVAILABLE_OVERFLOW),
    )
}
