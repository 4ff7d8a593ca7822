"""Watchpoint conditions against an independent plain-NumPy reference.

Each condition is evaluated the way msdbg/engine/evaluate.py does it (validated watchpoint parameters ->
compute_stats with the condition's needs -> Condition.evaluate, or History.judge_turbulence) and compared
with a full-array NumPy reference written here from the project's promised semantics:

* the parameter suffix is the comparison (_gt >, _lt <, _ge >=, _le <=); several bounds hit if any holds;
* a tensor holding NaN/Inf never silently passes a bound condition: it hits, a reason says "not finite";
* min/max/mean/abs_mean are over the finite elements; zero_percentage = 100 * zeros / size (-0.0 is zero);
  range_percentage = 100 * count(finite and start <= x <= end) / size; max_min = max - min;
* weight_not_changed: every |cur - prev| <= atol + rtol * |prev|;
  update ratio = mean|cur - prev| / (mean|prev| + 1e-9);
* tensor_turbulence: hit when norm or |mean| > (1 + threshold) * EMA (factor beta) of the past values,
  once warmup past values were seen.
"""

from __future__ import annotations

import operator

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from msdbg.engine.conditions import CONDITIONS
from msdbg.engine.history import History
from msdbg.engine.stats import compute_stats
from msdbg.engine.watchpoints import WatchpointList
from msdbg.errors import UsageError

# --- the code under test, driven as evaluate.py drives it --------------------------------------------------


def make(name: str, **params):
    """A validated watchpoint (defaults filled), as `watch NAME k=v ...` creates it."""
    return WatchpointList().add(name, {key: repr(float(value)) for key, value in params.items()}, None)


def judge(watchpoint, array, previous=None):
    condition, params = watchpoint.condition, watchpoint.params
    extra = {}
    if condition.needs_range:
        extra["value_range"] = (params.get("range_start_inclusive", -np.inf),
                                params.get("range_end_inclusive", np.inf))
    if condition.needs_previous:
        extra.update(previous=np.asarray(previous), rtol=params.get("rtol", 1e-5), atol=params.get("atol", 1e-8))
    stats = compute_stats(np.asarray(array), condition.stat_needs(params), **extra)
    return condition.evaluate(stats, params)


def verdict(name, array, previous=None, **params):
    return judge(make(name, **params), array, previous)


# --- the independent reference ----------------------------------------------------------------------------

COMPARE = {"gt": operator.gt, "lt": operator.lt, "ge": operator.ge, "le": operator.le}
SETTINGS = {"range_start_inclusive", "range_end_inclusive", "rtol", "atol", "threshold", "beta", "warmup"}


def wide(array) -> np.ndarray:
    """Every float16/float32 value is exactly representable in float64."""
    return np.asarray(array, dtype=np.float64).ravel()


def ref_statistic(name: str, x: np.ndarray, prev: np.ndarray | None, params: dict) -> float | None:
    """The statistic a parameter named ``<name>_<op>`` bounds; None where it is undefined."""
    finite = x[np.isfinite(x)]
    if name in ("abs_mean", "mean", "max", "min", "max_min") and finite.size == 0:
        return None
    if name == "abs_mean":
        return float(np.mean(np.abs(finite)))
    if name == "mean":
        return float(np.mean(finite))
    if name == "max":
        return float(np.max(finite))
    if name == "min":
        return float(np.min(finite))
    if name == "max_min":
        return float(np.max(finite)) - float(np.min(finite))
    counts = {"nan_count": np.isnan(x), "pos_inf_count": x == np.inf, "neg_inf_count": x == -np.inf,
              "zero_count": x == 0, "neg_count": np.isfinite(x) & (x < 0), "pos_count": np.isfinite(x) & (x > 0)}
    if name in counts:  # counts are defined (0) on an empty tensor
        return float(np.count_nonzero(counts[name]))
    if x.size == 0:
        return None
    if name == "zero_percentage":
        return 100.0 * np.count_nonzero(x == 0) / x.size
    if name == "range_percentage":
        start, end = params["range_start_inclusive"], params["range_end_inclusive"]
        inside = np.isfinite(x) & (x >= start) & (x <= end)
        return 100.0 * np.count_nonzero(inside) / x.size
    if name == "abs_mean_update_ratio":
        return float(np.mean(np.abs(x - prev)) / (np.mean(np.abs(prev)) + 1e-9))
    raise AssertionError(f"no reference for {name}")


def ref_nonfinite(array) -> bool:
    return bool(np.any(~np.isfinite(wide(array))))


def ref_bounds_hit(params: dict, array, previous=None, nonfinite_hits: bool = True) -> bool:
    """Any bound holds, or (unless nonfinite_hits is False) the tensor is not finite."""
    x = wide(array)
    if nonfinite_hits and ref_nonfinite(x):
        return True
    prev = None if previous is None else wide(previous)
    for name, bound in params.items():
        if name in SETTINGS:
            continue
        statistic, op = name.rsplit("_", 1)
        value = ref_statistic(statistic, x, prev, params)
        if value is not None and COMPARE[op](value, bound):
            return True
    return False


def ref_hit(name: str, params: dict, array, previous=None) -> bool:
    kind = CONDITION_KIND[name]
    if kind == "overflow":
        return ref_nonfinite(array)
    if kind == "health" and not set(params) - SETTINGS:
        return ref_nonfinite(array)
    if kind == "health" and set(params) & {"nan_count_gt", "pos_inf_count_gt", "neg_inf_count_gt"}:
        # the watchpoint bounds NaN/Inf counts itself: the counts decide, NaN/Inf do not hit on their own
        with np.errstate(invalid="ignore", over="ignore"):
            return ref_bounds_hit(params, array, previous, nonfinite_hits=False)
    if kind == "symmetric":
        return ref_rows_identical(array)
    if kind == "init_scale":
        return ref_nonfinite(array) or ref_std_ratio(array) > params["std_ratio_gt"]
    if kind == "unchanged":
        x, prev = wide(array), wide(previous)
        with np.errstate(invalid="ignore"):
            within = np.abs(x - prev) <= params["atol"] + params["rtol"] * np.abs(prev)
        return x.size > 0 and bool(np.all(within))
    with np.errstate(invalid="ignore", over="ignore"):
        return ref_bounds_hit(params, array, previous)


def ref_rows_identical(array) -> bool:
    """Every row along the first axis equals the first, element by element (NaN equals nothing), for tensors of 2+
    axes with 2+ rows."""
    x = np.asarray(array, np.float64)
    if x.ndim < 2 or x.shape[0] < 2 or x.size == 0:
        return False
    rows = x.reshape(x.shape[0], -1)
    return bool(np.all(rows == rows[0]))


def ref_std_ratio(array) -> float:
    """np.std over sqrt(2 / fan_in) (fan_in: the product of all axes but the first); -inf where undefined."""
    x = np.asarray(array, np.float64)
    if x.ndim < 2 or x.size == 0:
        return -np.inf
    return float(np.std(x) / np.sqrt(2.0 / np.prod(x.shape[1:])))


def ref_turbulence(arrays_seq, threshold, beta, warmup) -> list[bool]:
    """Hits per step: norm or |mean| above (1 + threshold) x the EMA of the previous steps' values."""
    hits, ema_norm, ema_mean, seen = [], None, None, 0
    for array in arrays_seq:
        x = wide(array)
        norm, mean = float(np.sqrt(np.sum(x * x))), abs(float(np.mean(x))) if x.size else 0.0
        if ema_norm is None:
            hits.append(False)
            ema_norm, ema_mean = norm, mean
        else:
            limit = 1.0 + threshold
            hits.append(seen >= warmup and (norm > limit * ema_norm or mean > limit * ema_mean))
            ema_norm = beta * ema_norm + (1 - beta) * norm
            ema_mean = beta * ema_mean + (1 - beta) * mean
        seen += 1
    return hits


# The promised condition table: name -> (evaluator family, categories it applies to; None = any).
CONDITION_KIND = {
    "weight_initialization": "bounds", "weight_overflow": "overflow", "gradient_exploding": "overflow",
    "tensor_overflow": "overflow", "weight_too_large": "bounds", "gradient_too_large": "bounds",
    "tensor_too_large": "bounds", "weight_too_small": "bounds", "gradient_vanishing": "bounds",
    "tensor_too_small": "bounds", "tensor_all_zero": "bounds", "weight_not_changed": "unchanged",
    "weight_change_too_large": "bounds", "weight_change_too_small": "bounds", "activation_range": "bounds",
    "tensor_range": "bounds", "tensor_health": "health", "tensor_turbulence": "turbulence",
    "rank_weight_mismatch": "cross_rank", "rank_gradient_mismatch": "cross_rank",
    "operator_overflow": "overflow", "input_too_large": "bounds", "input_turbulence": "turbulence",
    "label_out_of_range": "labels", "label_imbalance": "labels", "label_unshuffled": "labels",
    "weight_frozen": "frozen", "loss_scale_improper": "loss_scale", "weight_symmetric": "symmetric",
    "weight_init_scale": "init_scale",
}
TARGETS = {
    "weight_initialization": {"weight"}, "weight_overflow": {"weight"}, "gradient_exploding": {"gradient"},
    "tensor_overflow": None, "weight_too_large": {"weight"}, "gradient_too_large": {"gradient"},
    "tensor_too_large": None, "weight_too_small": {"weight"}, "gradient_vanishing": {"gradient"},
    "tensor_too_small": None, "tensor_all_zero": None, "weight_not_changed": {"weight"},
    "weight_change_too_large": {"weight"}, "weight_change_too_small": {"weight"},
    "activation_range": {"activation"}, "tensor_range": None, "tensor_health": None, "tensor_turbulence": None,
    "rank_weight_mismatch": {"weight"}, "rank_gradient_mismatch": {"gradient"},
    "input_too_large": {"input"}, "input_turbulence": {"input"}, "label_out_of_range": {"input"},
    "label_imbalance": {"input"}, "label_unshuffled": {"input"}, "weight_frozen": {"weight"},
    "loss_scale_improper": {"optimizer_state"}, "weight_symmetric": {"weight"}, "weight_init_scale": {"weight"},
}
CATEGORIES = ("weight", "gradient", "activation", "optimizer_state", "input")

F16_TINY = 2.0**-24  # the smallest float16 subnormal

# Crafted tensors: edge values of every kind, several dtypes and shapes.
CRAFTED = {
    "empty": np.array([], np.float32),
    "scalar_0d": np.array(2.5, np.float32),
    "scalar_0d_zero": np.array(-0.0, np.float32),
    "scalar_0d_nan": np.array(np.nan, np.float32),
    "nan_mixed": np.array([1.0, np.nan, -2.0], np.float32),
    "all_nan": np.full(4, np.nan, np.float32),
    "pos_inf": np.array([1.0, np.inf, 0.5], np.float32),
    "neg_inf": np.array([-np.inf, 0.5, 0.0], np.float32),
    "neg_zero": np.array([-0.0, -0.0, 0.0], np.float32),
    "half_zero": np.array([0.0, -0.0, 3.0, -1.0], np.float32),
    "zeros_2d": np.zeros((3, 4), np.float32),
    "constant": np.full((2, 5), 0.25, np.float32),
    "constant_neg": np.full(7, -3.0, np.float32),
    "mixed": np.array([0.0, -1.5, 2.25, 1e-30, -7.0, 100.0], np.float32),
    "f16_extremes": np.array([65504.0, -65504.0, 1.0], np.float16),
    "f16_max_only": np.array([65504.0, 65504.0], np.float16),
    "f16_subnormals": np.array([F16_TINY, -F16_TINY, 3 * F16_TINY, 0.0], np.float16),
    "f16_inf": np.array([np.inf, 1.0], np.float16),
    "f16_nan": np.array([np.nan, -1.0, 0.0], np.float16),
    "huge_f32": np.array([3e38, 3e38, -3e38], np.float32),
    "huge_f32_pos": np.array([3e38, 3.4e38], np.float32),
    "tiny_f32": np.array([1e-45, -1e-45, 1e-38], np.float32),
    "f64_wide": np.array([1e300, -1e-300, 0.0, 7.0], np.float64),
}

# Bound conditions with parameter sets chosen so different crafted tensors fall on both sides.
BOUND_CASES = [
    ("tensor_too_large", {"max_gt": 1.0}), ("tensor_too_large", {"min_gt": -1.0}),
    ("tensor_too_large", {"mean_gt": 0.0}), ("tensor_too_large", {"abs_mean_gt": 1e3}),
    ("tensor_too_large", {"max_gt": 65503.0}), ("tensor_too_large", {"abs_mean_gt": 1e38}),
    ("tensor_too_large", {"mean_gt": 2.0, "min_gt": 0.0}),
    ("weight_too_large", {"max_gt": 0.2}), ("gradient_too_large", {"abs_mean_gt": 1.0}),
    ("input_too_large", {"abs_mean_gt": 1.0}),
    ("tensor_too_small", {"min_lt": -1.0}), ("tensor_too_small", {"max_lt": 0.0}),
    ("tensor_too_small", {"mean_lt": 0.0}), ("tensor_too_small", {"abs_mean_lt": 1e-6}),
    ("tensor_too_small", {"min_lt": -65503.0}), ("tensor_too_small", {"abs_mean_lt": 0.3, "max_lt": -2.0}),
    ("weight_too_small", {"abs_mean_lt": 1e-7}), ("gradient_vanishing", {"max_lt": 3 * F16_TINY}),
    ("tensor_all_zero", {}), ("tensor_all_zero", {"zero_percentage_ge": 50.0}),
    ("weight_initialization", {}), ("weight_initialization", {"max_gt": 2.0}),
    ("weight_initialization", {"min_lt": -2.0}), ("weight_initialization", {"zero_percentage_ge": 30.0}),
    ("tensor_range", {"range_start_inclusive": -1.0, "range_end_inclusive": 1.0, "range_percentage_lt": 50.0}),
    ("tensor_range", {"range_start_inclusive": -1.0, "range_end_inclusive": 1.0, "range_percentage_gt": 50.0}),
    ("tensor_range", {"range_start_inclusive": 0.0, "range_end_inclusive": 0.0, "range_percentage_gt": 0.0}),
    ("tensor_range", {"range_start_inclusive": -65504.0, "range_end_inclusive": 65504.0,
                      "range_percentage_lt": 100.0}),
    ("tensor_range", {"max_min_lt": 1.0}), ("tensor_range", {"max_min_gt": 5.0}),
    ("tensor_range", {"max_min_gt": 1e38}),
    ("activation_range", {"range_start_inclusive": 0.0, "range_end_inclusive": 1.0, "range_percentage_gt": 60.0,
                          "max_min_gt": 100.0}),
    ("tensor_health", {}), ("tensor_health", {"zero_count_gt": 0.0}), ("tensor_health", {"neg_count_gt": 1.0}),
    ("tensor_health", {"pos_count_gt": 2.0}), ("tensor_health", {"nan_count_gt": 0.0}),
    ("tensor_health", {"neg_count_gt": 5.0, "zero_count_gt": 2.0}),
    ("weight_overflow", {}), ("gradient_exploding", {}), ("tensor_overflow", {}),
]


def _case_id(case):
    name, params = case
    return name + "".join(f"-{k}={v:g}" for k, v in params.items())


# --- the table and its targets ----------------------------------------------------------------------------

def test_condition_table_matches_the_spec():
    assert set(CONDITIONS) == set(CONDITION_KIND)
    for name, condition in CONDITIONS.items():
        assert condition.name == name


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_applies_to_category_targeting(name):
    condition = CONDITIONS[name]
    for category in CATEGORIES:
        expected = TARGETS[name] is None or category in TARGETS[name]
        assert condition.applies_to(category) is expected, (name, category)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_watchpoint_watches_follows_the_category(name):
    """Watchpoint.watches gates on the category before the target pattern."""
    class Entry:  # the attributes Watchpoint.watches and TargetPattern read
        node, op_type, param = "Default/net/fc1/MatMul-op1", "MatMul", None

    params = {"tensor_range": {"max_min_gt": 1.0}, "activation_range": {"max_min_gt": 1.0}}.get(name)
    if params is None:
        first_bound = next((p.name for p in CONDITIONS[name].params if p.statistic), None)
        params = {first_bound: 1.0} if CONDITION_KIND[name] == "bounds" and first_bound else {}
    watchpoint = make(name, **params)
    for category in CATEGORIES:
        Entry.category = category
        assert watchpoint.watches(Entry) is (TARGETS[name] is None or category in TARGETS[name])
    watchpoint.enabled = False
    assert not watchpoint.watches(Entry)


# --- creation-time validation -----------------------------------------------------------------------------

def test_unknown_condition_lists_the_accepted_ones():
    with pytest.raises(UsageError) as error:
        WatchpointList().add("tensor_too_big", {}, None)
    message = str(error.value)
    assert "tensor_too_big" in message
    assert all(name in message for name in CONDITION_KIND)


@pytest.mark.parametrize("name, bad, accepted", [
    ("tensor_too_large", "max_lt", ["abs_mean_gt", "max_gt", "min_gt", "mean_gt"]),
    ("tensor_too_small", "max_gt", ["abs_mean_lt", "max_lt", "min_lt", "mean_lt"]),
    ("weight_not_changed", "abs_mean_update_ratio_gt", ["rtol", "atol"]),
    ("tensor_turbulence", "max_gt", ["threshold", "beta", "warmup"]),
    ("tensor_range", "range_start", ["range_start_inclusive", "range_end_inclusive", "range_percentage_lt",
                                     "range_percentage_gt", "max_min_lt", "max_min_gt"]),
    ("tensor_health", "inf_count_gt", ["nan_count_gt", "pos_inf_count_gt", "neg_inf_count_gt", "zero_count_gt",
                                       "neg_count_gt", "pos_count_gt"]),
    ("tensor_overflow", "max_gt", ["none"]),
])
def test_unknown_parameter_names_the_accepted_ones(name, bad, accepted):
    with pytest.raises(UsageError) as error:
        WatchpointList().add(name, {bad: "1"}, None)
    message = str(error.value)
    assert repr(bad) in message or bad in message
    assert all(a in message for a in accepted), message


@pytest.mark.parametrize("raw", ["abc", "", "1..2", "0x10", "1,5"])
def test_non_numeric_value_is_rejected(raw):
    with pytest.raises(UsageError, match="not a number"):
        WatchpointList().add("tensor_too_large", {"max_gt": raw}, None)


@pytest.mark.parametrize("raw", ["nan", "NaN", "-nan"])
def test_nan_value_is_rejected(raw):
    with pytest.raises(UsageError, match="NaN"):
        WatchpointList().add("tensor_too_large", {"max_gt": raw}, None)


def test_infinite_and_exponent_values_are_numbers():
    assert make("tensor_too_large", max_gt=float("inf")).params == {"max_gt": float("inf")}
    assert WatchpointList().add("tensor_too_small", {"abs_mean_lt": "1e-6"}, None).params == {"abs_mean_lt": 1e-6}


@pytest.mark.parametrize("name", ["tensor_range", "activation_range"])
@pytest.mark.parametrize("given", [
    {"range_percentage_lt": 50.0},
    {"range_percentage_gt": 50.0, "range_start_inclusive": 0.0},
    {"range_percentage_gt": 50.0, "range_end_inclusive": 1.0},
])
def test_range_percentage_needs_both_bounds(name, given):
    with pytest.raises(UsageError) as error:
        make(name, **given)
    assert "range_start_inclusive" in str(error.value) and "range_end_inclusive" in str(error.value)


def test_range_start_above_end_is_rejected_and_equal_is_accepted():
    with pytest.raises(UsageError, match="range_start_inclusive"):
        make("tensor_range", range_start_inclusive=2.0, range_end_inclusive=1.0, range_percentage_lt=10.0)
    assert make("tensor_range", range_start_inclusive=1.0, range_end_inclusive=1.0, range_percentage_lt=10.0)


def test_range_bounds_without_a_percentage_are_rejected():
    with pytest.raises(UsageError, match="range_percentage"):
        make("tensor_range", range_start_inclusive=0.0, range_end_inclusive=1.0)


@pytest.mark.parametrize("name, param", [("weight_not_changed", "rtol"), ("weight_not_changed", "atol"),
                                         ("tensor_turbulence", "threshold"), ("tensor_turbulence", "warmup")])
def test_negative_settings_are_rejected(name, param):
    with pytest.raises(UsageError, match=param):
        make(name, **{param: -1e-9})
    assert make(name, **{param: 0.0}).params[param] == 0.0


@pytest.mark.parametrize("beta", [0.0, 1.0, -0.5, 1.5, float("inf")])
def test_beta_outside_open_unit_interval_is_rejected(beta):
    with pytest.raises(UsageError, match="beta"):
        make("tensor_turbulence", beta=beta)


def test_beta_inside_unit_interval_is_accepted():
    assert make("tensor_turbulence", beta=0.5).params["beta"] == 0.5


def test_operator_overflow_is_unavailable_and_says_why():
    with pytest.raises(UsageError) as error:
        WatchpointList().add("operator_overflow", {}, None)
    message = str(error.value)
    assert "operator_overflow" in message and "Ascend" in message and "tensor_overflow" in message
    assert not CONDITIONS["operator_overflow"].available


@pytest.mark.parametrize("name", ["weight_too_large", "gradient_too_large", "tensor_too_large", "weight_too_small",
                                  "gradient_vanishing", "tensor_too_small", "tensor_range", "activation_range"])
def test_bound_conditions_need_at_least_one_bound(name):
    with pytest.raises(UsageError) as error:
        WatchpointList().add(name, {}, None)
    message = str(error.value)
    assert "at least one" in message
    assert all(p.name in message for p in CONDITIONS[name].params if p.statistic)


def test_failed_add_does_not_consume_a_number():
    watchpoints = WatchpointList()
    with pytest.raises(UsageError):
        watchpoints.add("tensor_too_large", {}, None)
    assert watchpoints.add("tensor_overflow", {}, None).number == 1
    assert watchpoints.add("tensor_all_zero", {}, None).number == 2


@pytest.mark.parametrize("name, given, expected", [
    ("tensor_all_zero", {}, {"zero_percentage_ge": 100.0}),
    ("tensor_all_zero", {"zero_percentage_ge": 40.0}, {"zero_percentage_ge": 40.0}),
    ("weight_initialization", {}, {"zero_percentage_ge": 100.0}),
    ("weight_change_too_large", {}, {"abs_mean_update_ratio_gt": 0.1}),
    ("weight_change_too_small", {}, {"abs_mean_update_ratio_lt": 1e-4}),
    ("weight_not_changed", {}, {"rtol": 1e-5, "atol": 1e-8}),
    ("weight_not_changed", {"rtol": 0.5}, {"rtol": 0.5, "atol": 1e-8}),
    ("weight_not_changed", {"atol": 0.0}, {"rtol": 1e-5, "atol": 0.0}),
    ("tensor_turbulence", {}, {"threshold": 1.0, "beta": 0.99, "warmup": 3.0}),
    ("tensor_turbulence", {"beta": 0.5}, {"threshold": 1.0, "beta": 0.5, "warmup": 3.0}),
    ("tensor_health", {}, {}),
    ("tensor_overflow", {}, {}),
    ("tensor_too_large", {"max_gt": 3.0}, {"max_gt": 3.0}),
])
def test_defaults_are_filled(name, given, expected):
    assert make(name, **given).params == expected


# --- crafted tensors against the reference ----------------------------------------------------------------

@pytest.mark.parametrize("case", BOUND_CASES, ids=_case_id)
def test_crafted_tensors_match_reference(case):
    name, given = case
    watchpoint = make(name, **given)
    mismatches = []
    for label, array in CRAFTED.items():
        result = judge(watchpoint, array)
        expected = ref_hit(name, watchpoint.params, array)
        if result.hit is not expected:
            mismatches.append(f"{label}: got {result.hit}, reference {expected} ({result.reasons})")
        assert result.hit is bool(result.reasons), f"{label}: a hit gives reasons and only a hit does"
        counts_nonfinite = set(given) & {"nan_count_gt", "pos_inf_count_gt", "neg_inf_count_gt"}
        if ref_nonfinite(array) and not counts_nonfinite:
            assert any("not finite" in r for r in result.reasons), label
    assert not mismatches, "\n".join(mismatches)


def test_statistics_are_over_finite_elements():
    """A NaN hits, but the reported bound statistics are those of the finite elements."""
    result = verdict("tensor_too_large", np.array([np.nan, 2.0, 4.0], np.float32), max_gt=3.0, mean_gt=2.5)
    assert any("not finite" in r and "nan=1" in r for r in result.reasons)
    assert any("max 4 > 3" in r for r in result.reasons)
    assert any("mean 3 > 2.5" in r for r in result.reasons)


def test_huge_float32_is_finite_and_its_statistics_do_not_overflow():
    array = np.array([3e38, 3e38, -3e38, 3.4e38], np.float32)
    assert not verdict("tensor_overflow", array).hit
    result = verdict("tensor_too_large", array, abs_mean_gt=3e38)
    assert result.hit and not any("not finite" in r for r in result.reasons)
    assert verdict("tensor_range", array, max_min_gt=6e38).hit
    assert not verdict("tensor_range", array, max_min_gt=6.5e38).hit
    assert not verdict("tensor_health", array).hit


def test_float16_extremes_and_subnormals():
    extremes = np.array([65504.0, -65504.0], np.float16)
    assert verdict("tensor_too_large", extremes, max_gt=65503.0).hit
    assert not verdict("tensor_too_large", extremes, max_gt=65504.0).hit
    assert verdict("tensor_too_small", extremes, min_lt=-65503.0).hit
    assert not verdict("tensor_too_small", extremes, min_lt=-65504.0).hit
    assert not verdict("tensor_overflow", extremes).hit
    subnormal = np.array([F16_TINY, F16_TINY], np.float16)
    assert not verdict("tensor_all_zero", subnormal).hit, "a subnormal is not zero"
    assert verdict("tensor_too_large", subnormal, max_gt=0.0).hit
    assert not verdict("tensor_too_large", subnormal, max_gt=F16_TINY).hit
    assert verdict("tensor_too_small", subnormal, abs_mean_lt=2 * F16_TINY).hit
    assert verdict("tensor_health", subnormal, pos_count_gt=1.0).hit


def test_negative_zero_counts_as_zero():
    array = np.array([-0.0, -0.0, 0.0, -0.0], np.float32)
    assert verdict("tensor_all_zero", array).hit
    assert verdict("weight_initialization", array).hit
    assert verdict("tensor_health", array, zero_count_gt=3.0).hit
    assert not verdict("tensor_health", array, neg_count_gt=0.0).hit
    assert verdict("tensor_all_zero", np.array(-0.0, np.float16)).hit


def test_empty_tensor_hits_nothing():
    empty = np.zeros((0, 3), np.float32)
    for name, params in BOUND_CASES:
        assert not verdict(name, empty, **params).hit, name
    assert not verdict("weight_not_changed", empty, previous=empty).hit
    assert not verdict("weight_change_too_small", empty, previous=empty).hit


# --- boundaries: the suffix is the comparison -------------------------------------------------------------

@pytest.mark.parametrize("name, param, array, hit", [
    ("tensor_too_large", "max_gt", [1.0, 3.0], False),  # max == 3: not > 3
    ("tensor_too_large", "min_gt", [3.0, 5.0], False),
    ("tensor_too_large", "mean_gt", [2.0, 4.0], False),
    ("tensor_too_large", "abs_mean_gt", [-2.0, 4.0], False),
    ("tensor_too_small", "max_lt", [1.0, 3.0], False),
    ("tensor_too_small", "min_lt", [3.0, 5.0], False),
    ("tensor_too_small", "mean_lt", [2.0, 4.0], False),
    ("tensor_too_small", "abs_mean_lt", [-2.0, 4.0], False),
    ("tensor_range", "max_min_gt", [1.0, 4.0], False),
    ("tensor_range", "max_min_lt", [1.0, 4.0], False),
    ("tensor_health", "neg_count_gt", [-1.0, -2.0, -3.0], False),
])
def test_strict_comparisons_do_not_hit_at_equality(name, param, array, hit):
    bound = 3.0
    array = np.asarray(array, np.float32)
    assert verdict(name, array, **{param: bound}).hit is hit
    nudge = {"gt": -1e-6, "lt": 1e-6}[param.rsplit("_", 1)[1]]
    assert verdict(name, array, **{param: bound + nudge}).hit, "just across the bound hits"


@pytest.mark.parametrize("name", ["tensor_all_zero", "weight_initialization"])
def test_ge_hits_at_equality(name):
    array = np.array([0.0, 0.0, 1.0, 2.0], np.float32)  # exactly 50 % zeros
    assert verdict(name, array, zero_percentage_ge=50.0).hit
    assert not verdict(name, array, zero_percentage_ge=50.000001).hit
    assert not verdict(name, array).hit  # default 100 %


def test_range_endpoints_are_inclusive():
    array = np.array([-1.0, 1.0, 1.0000001, -1.0000001], np.float32)  # two inside [-1, 1]: exactly 50 %
    bounds = {"range_start_inclusive": -1.0, "range_end_inclusive": 1.0}
    assert not verdict("tensor_range", array, range_percentage_gt=50.0, **bounds).hit
    assert verdict("tensor_range", array, range_percentage_gt=49.9, **bounds).hit
    assert not verdict("tensor_range", array, range_percentage_lt=50.0, **bounds).hit
    assert verdict("tensor_range", array, range_percentage_lt=50.1, **bounds).hit
    point = {"range_start_inclusive": 1.0, "range_end_inclusive": 1.0}
    assert verdict("activation_range", array, range_percentage_gt=24.9, **point).hit  # [1, 1] holds one value


def test_zero_percentage_counts_nonfinite_in_the_size():
    array = np.array([0.0, -0.0, np.nan, 1.0], np.float32)  # 2 zeros of 4 elements: 50 %, not 2 of 3 finite
    result = verdict("tensor_all_zero", array, zero_percentage_ge=50.0)
    assert any("zero_percentage 50 >= 50" in r for r in result.reasons), result.reasons
    result = verdict("tensor_all_zero", array, zero_percentage_ge=60.0)
    assert result.hit and not any("zero_percentage" in r for r in result.reasons), result.reasons


def test_range_percentage_counts_nonfinite_in_the_size():
    array = np.array([0.5, np.nan, np.inf, 0.25], np.float32)  # 2 of 4 inside: 50 %
    bounds = {"range_start_inclusive": -np.inf, "range_end_inclusive": np.inf}
    stats = compute_stats(array, {"range_count", "nonfinite"}, value_range=(-np.inf, np.inf))
    assert stats.range_count == 2
    result = verdict("tensor_range", array, range_percentage_lt=10.0, **bounds)
    assert result.hit and all("range_percentage" not in r for r in result.reasons)
    assert any("not finite" in r for r in result.reasons)


def test_weight_not_changed_tolerance_boundary():
    prev = np.array([1.0, -2.0, 0.0], np.float64)
    rtol, atol = 2.0**-10, 2.0**-20
    edge = prev + np.array([1, -1, 1]) * (atol + rtol * np.abs(prev))  # exactly on atol + rtol*|prev|
    assert verdict("weight_not_changed", edge, previous=prev, rtol=rtol, atol=atol).hit
    for i in range(3):
        beyond = edge.copy()
        beyond[i] = np.nextafter(edge[i], np.inf if edge[i] >= prev[i] else -np.inf)
        assert not verdict("weight_not_changed", beyond, previous=prev, rtol=rtol, atol=atol).hit, i
    assert not verdict("weight_not_changed", edge, previous=prev, rtol=rtol / 2, atol=atol).hit
    assert verdict("weight_not_changed", prev, previous=prev, rtol=0.0, atol=0.0).hit


def test_weight_not_changed_float32_defaults():
    prev = np.array([1.0, 100.0, -3.0], np.float32)
    assert verdict("weight_not_changed", prev.copy(), previous=prev).hit
    nudged = prev.copy()
    nudged[1] = np.nextafter(np.float32(100.0), np.float32(200.0))  # 7.6e-6 away: within 1e-8 + 1e-5 * 100
    assert verdict("weight_not_changed", nudged, previous=prev).hit
    nudged[0] = np.float32(1.0001)
    assert not verdict("weight_not_changed", nudged, previous=prev).hit


@pytest.mark.parametrize("prev, cur", [
    ([1.0, np.nan], [1.0, np.nan]), ([np.inf, 1.0], [np.inf, 1.0]), ([1.0, 2.0], [1.0, np.nan]),
    ([-np.inf], [-np.inf]),
])
def test_weight_not_changed_never_holds_with_nan_or_inf(prev, cur):
    prev, cur = np.array(prev, np.float32), np.array(cur, np.float32)
    assert not verdict("weight_not_changed", cur, previous=prev).hit
    assert ref_hit("weight_not_changed", {"rtol": 1e-5, "atol": 1e-8}, cur, prev) is False


def test_weight_not_changed_scalar_0d():
    assert verdict("weight_not_changed", np.array(2.0, np.float32), previous=np.array(2.0, np.float32)).hit
    assert not verdict("weight_not_changed", np.array(2.5, np.float32), previous=np.array(2.0, np.float32)).hit


CHANGE_PAIRS = {
    "unchanged": ([1.0, -2.0, 3.0], [1.0, -2.0, 3.0]),
    "small": ([1.0, -2.0, 3.0], [1.00001, -2.0, 3.0]),
    "half": ([1.0, 1.0], [1.5, 0.5]),
    "large": ([1.0, -1.0], [3.0, 1.0]),
    "from_zero": ([0.0, 0.0], [1e-6, 0.0]),
    "zeros": ([0.0, 0.0], [0.0, -0.0]),
    "scalar": (2.0, 2.2),
    "huge": ([3e38, -3e38], [-3e38, 3e38]),
    "nan_now": ([1.0, 2.0], [np.nan, 2.0]),
    "inf_now": ([1.0, 2.0], [1.0, np.inf]),
}


@pytest.mark.parametrize("name, given", [
    ("weight_change_too_large", {}), ("weight_change_too_large", {"abs_mean_update_ratio_gt": 1.0}),
    ("weight_change_too_small", {}), ("weight_change_too_small", {"abs_mean_update_ratio_lt": 0.3}),
    ("weight_not_changed", {}), ("weight_not_changed", {"rtol": 0.1, "atol": 0.0}),
])
def test_change_conditions_on_crafted_pairs(name, given):
    watchpoint = make(name, **given)
    for label, (prev, cur) in CHANGE_PAIRS.items():
        prev, cur = np.array(prev, np.float32), np.array(cur, np.float32)
        result = judge(watchpoint, cur, prev)
        assert result.hit is ref_hit(name, watchpoint.params, cur, prev), (label, result)
        if name != "weight_not_changed" and ref_nonfinite(cur):
            assert any("not finite" in r for r in result.reasons), label


def test_update_ratio_uses_means_and_epsilon():
    prev, cur = np.array([2.0, -2.0], np.float64), np.array([2.5, -2.5], np.float64)
    ratio = 0.5 / (2.0 + 1e-9)  # mean|cur - prev| / (mean|prev| + 1e-9)
    assert verdict("weight_change_too_large", cur, previous=prev, abs_mean_update_ratio_gt=ratio * 0.999999).hit
    assert not verdict("weight_change_too_large", cur, previous=prev, abs_mean_update_ratio_gt=ratio).hit
    # Unchanged all-zero weights: 0 / (0 + 1e-9) = 0, which is below any positive bound.
    zeros = np.zeros(3, np.float32)
    assert verdict("weight_change_too_small", zeros, previous=zeros).hit
    assert not verdict("weight_change_too_large", zeros, previous=zeros).hit


# --- several parameters: any one holds --------------------------------------------------------------------

def test_any_of_several_bounds_hits():
    array = np.array([0.5, 1.5, 2.0], np.float32)  # max 2, min 0.5, mean 4/3, abs_mean 4/3
    assert not verdict("tensor_too_large", array, max_gt=2.0, min_gt=0.5, mean_gt=1.5, abs_mean_gt=1.5).hit
    for param, bound in [("max_gt", 1.9), ("min_gt", 0.4), ("mean_gt", 1.3), ("abs_mean_gt", 1.3)]:
        params = {"max_gt": 2.0, "min_gt": 0.5, "mean_gt": 1.5, "abs_mean_gt": 1.5, param: bound}
        result = verdict("tensor_too_large", array, **params)
        assert result.hit and len(result.reasons) == 1 and param in result.reasons[0], param
    both = verdict("tensor_too_large", array, max_gt=1.0, min_gt=0.0)
    assert len(both.reasons) == 2


def test_any_of_range_and_spread_hits():
    array = np.array([0.0, 0.5, 10.0], np.float32)
    bounds = {"range_start_inclusive": 0.0, "range_end_inclusive": 1.0}
    assert verdict("tensor_range", array, range_percentage_gt=90.0, max_min_gt=5.0, **bounds).hit
    assert verdict("tensor_range", array, range_percentage_gt=50.0, max_min_gt=50.0, **bounds).hit
    assert not verdict("tensor_range", array, range_percentage_gt=90.0, max_min_gt=50.0, **bounds).hit


def test_health_counts_any_holds():
    array = np.array([-1.0, -2.0, 0.0, 3.0, 4.0, 5.0], np.float32)
    assert not verdict("tensor_health", array).hit, "no bound and all finite"
    assert not verdict("tensor_health", array, neg_count_gt=2.0, zero_count_gt=1.0, pos_count_gt=3.0).hit
    assert verdict("tensor_health", array, neg_count_gt=2.0, zero_count_gt=0.0, pos_count_gt=3.0).hit
    assert verdict("tensor_health", array, pos_count_gt=2.0).hit
    result = verdict("tensor_health", np.array([np.nan, np.inf, -np.inf, -np.inf], np.float32))
    assert result.hit and "nan=1" in result.reasons[0] and "+inf=1" in result.reasons[0] \
        and "-inf=2" in result.reasons[0]


# --- NaN/Inf never silently passes a bound ----------------------------------------------------------------

# For every bound condition, a parameter set the finite part [0.5, 0.5] does not trip.
PASSING_BOUNDS = {
    "weight_initialization": {"max_gt": 10.0, "min_lt": -10.0},
    "weight_too_large": {"max_gt": 10.0}, "gradient_too_large": {"abs_mean_gt": 10.0},
    "input_too_large": {"abs_mean_gt": 10.0},
    "tensor_too_large": {"max_gt": 10.0, "min_gt": 10.0, "mean_gt": 10.0, "abs_mean_gt": 10.0},
    "weight_too_small": {"min_lt": -10.0}, "gradient_vanishing": {"abs_mean_lt": 1e-3},
    "tensor_too_small": {"max_lt": -10.0, "min_lt": -10.0, "mean_lt": -10.0, "abs_mean_lt": 1e-3},
    "tensor_all_zero": {},
    "weight_change_too_large": {"abs_mean_update_ratio_gt": 10.0},
    "weight_change_too_small": {"abs_mean_update_ratio_lt": 1e-30},
    "activation_range": {"range_start_inclusive": 0.0, "range_end_inclusive": 1.0, "range_percentage_lt": 1.0},
    "tensor_range": {"max_min_gt": 10.0, "max_min_lt": -1.0},
    "tensor_health": {"neg_count_gt": 10.0},
    "weight_init_scale": {},
}


def test_every_bound_condition_is_covered():
    bound_conditions = {n for n, c in CONDITIONS.items() if c.bounds and c.kind in ("bounds", "health", "init_scale")}
    assert bound_conditions == set(PASSING_BOUNDS)


@pytest.mark.parametrize("name", sorted(PASSING_BOUNDS))
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_nonfinite_never_silently_passes(name, bad, dtype):
    watchpoint = make(name, **PASSING_BOUNDS[name])
    clean = np.array([0.5, 0.5, 0.5], dtype)
    dirty = clean.copy()
    dirty[1] = bad
    previous = clean.copy() * 0.999 if watchpoint.condition.needs_previous else None
    assert not judge(watchpoint, clean, previous).hit, "the finite tensor passes"
    result = judge(watchpoint, dirty, previous)
    assert result.hit
    assert any("not finite" in r for r in result.reasons), result.reasons
    all_bad = np.full(3, bad, dtype)
    result = judge(watchpoint, all_bad, previous)
    assert result.hit and any("not finite" in r for r in result.reasons)


@pytest.mark.parametrize("name", ["weight_overflow", "gradient_exploding", "tensor_overflow", "tensor_health"])
def test_overflow_conditions(name):
    for label, array in CRAFTED.items():
        result = verdict(name, array)
        assert result.hit is ref_nonfinite(array), label
        if result.hit:
            assert "not finite" in result.reasons[0]


# --- tensor_turbulence ------------------------------------------------------------------------------------

KEY = (0, "Net", 0, "Default/loss:output:0")


def turbulence_hits(sequence, **given):
    watchpoint = make("tensor_turbulence", **given)
    condition, params, history = watchpoint.condition, watchpoint.params, History()
    hits = []
    for array in sequence:
        stats = compute_stats(array, condition.stat_needs(params))
        hits.append(history.judge_turbulence(condition, KEY, watchpoint.number, stats, params).hit)
    return hits


def test_turbulence_spike_after_warmup():
    steady = [np.full(4, 1.0, np.float32)] * 5
    spike = np.full(4, 3.0, np.float32)
    sequence = steady + [spike] + steady
    assert turbulence_hits(sequence) == ref_turbulence(sequence, 1.0, 0.99, 3)
    assert turbulence_hits(sequence) == [False] * 5 + [True] + [False] * 5


def test_turbulence_is_quiet_during_warmup():
    sequence = [np.full(3, 1.0, np.float32), np.full(3, 100.0, np.float32), np.full(3, 1e4, np.float32)]
    assert turbulence_hits(sequence) == [False, False, False]
    assert turbulence_hits(sequence, warmup=1) == [False, True, True]
    assert turbulence_hits(sequence, warmup=1) == ref_turbulence(sequence, 1.0, 0.99, 1)


def test_turbulence_mean_jump_with_steady_norm():
    a = np.array([1.0, -1.0, 1.0, -1.0], np.float32)  # norm 2, mean 0
    b = np.array([1.0, 1.0, 1.0, 1.0], np.float32)  # norm 2, |mean| 1
    sequence = [a + 0.1, a + 0.1, a + 0.1, a + 0.1, b]
    assert turbulence_hits(sequence, threshold=0.5) == ref_turbulence(sequence, 0.5, 0.99, 3)
    assert turbulence_hits(sequence, threshold=0.5)[-1]


def test_turbulence_keys_are_independent():
    watchpoint = make("tensor_turbulence", warmup=1)
    condition, params, history = watchpoint.condition, watchpoint.params, History()
    small, big = np.ones(3, np.float32), np.full(3, 50.0, np.float32)

    def step(key, array):
        stats = compute_stats(array, condition.stat_needs(params))
        return history.judge_turbulence(condition, key, watchpoint.number, stats, params).hit

    assert not step(("a",), small) and not step(("b",), big)
    assert not step(("b",), big), "b's own average is 50"
    assert step(("a",), big)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_turbulence_nonfinite_hits_not_finite(bad):
    watchpoint = make("tensor_turbulence")
    condition, params = watchpoint.condition, watchpoint.params
    stats = compute_stats(np.array([1.0, bad], np.float32), condition.stat_needs(params))
    result = History().judge_turbulence(condition, KEY, watchpoint.number, stats, params)
    assert result.hit and any("not finite" in r for r in result.reasons)


@settings(max_examples=60, deadline=None)
@given(scales=st.lists(st.integers(-40, 40), min_size=1, max_size=12), size=st.integers(1, 6),
       threshold=st.sampled_from([0.0, 0.5, 1.0, 3.0]), beta=st.sampled_from([0.5, 0.9, 0.99]),
       warmup=st.integers(0, 4))
def test_turbulence_matches_reference(scales, size, threshold, beta, warmup):
    # Small integer values: norms and means are exact in both implementations, so only the rule is compared.
    sequence = [np.arange(size, dtype=np.float32) * s + s for s in scales]
    got = turbulence_hits(sequence, threshold=threshold, beta=beta, warmup=warmup)
    assert got == ref_turbulence(sequence, threshold, beta, warmup)


# --- properties: random float32 tensors and random bounds -------------------------------------------------

FLOAT32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
ELEMENTS = st.one_of(FLOAT32, st.floats(-4, 4, width=32),
                     st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, np.nan, np.inf, -np.inf]))
TENSORS = arrays(np.float32, array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=8), elements=ELEMENTS)
# Bounds: anywhere, near the usual range, and (drawn in the tests) exactly a value of the tensor.
BOUNDS = st.one_of(FLOAT32, st.floats(-4, 4), st.sampled_from([0.0, 1.0, -1.0, 0.5]))


def draw_bound(data, array):
    finite = wide(array)[np.isfinite(wide(array))]
    if finite.size and data.draw(st.booleans()):
        return float(data.draw(st.sampled_from(sorted(set(finite.tolist())))))
    return data.draw(BOUNDS)


def rounding_ties(params: dict, array) -> set[str]:
    """Bounds on a mean that lie within float64 summation error of the tensor's mean: the kernel and NumPy add in
    different orders (e.g. 9.0072e15 and seven -1: sequential float64 loses each -1, pairwise keeps -7), so on such
    a bound either verdict is right."""
    x = wide(array)
    finite = x[np.isfinite(x)]
    if not finite.size:
        return set()
    scale = float(np.mean(np.abs(finite)))
    ties = set()
    for param, bound in params.items():
        statistic = param.rsplit("_", 1)[0]
        if statistic in ("mean", "abs_mean"):
            value = ref_statistic(statistic, x, None, params)
            if value is not None and abs(value - bound) <= 1e-9 * scale:
                ties.add(param)
    return ties


def check(name, given, array, previous=None):
    watchpoint = make(name, **given)
    result = judge(watchpoint, array, previous)
    ties = rounding_ties(watchpoint.params, array) if CONDITION_KIND[name] == "bounds" else set()
    expected = ref_hit(name, {k: v for k, v in watchpoint.params.items() if k not in ties}, array, previous)
    if ties and not expected:  # only the tied bounds could hit: either verdict is right
        return
    assert result.hit is expected, (name, given, array, previous, result)
    if CONDITION_KIND[name] == "bounds" and ref_nonfinite(array):
        assert any("not finite" in r for r in result.reasons)


def test_a_mean_bound_within_rounding_of_the_mean_is_a_tie():
    array = np.array([9.0072e15] + [-1.0] * 7, np.float32)
    assert rounding_ties({"mean_gt": float(np.mean(wide(array)))}, array) == {"mean_gt"}
    assert rounding_ties({"mean_gt": 1e15, "max_gt": 1.0}, array) == set()
    check("tensor_too_large", {"mean_gt": float(np.mean(wide(array)))}, array)  # either verdict passes
    check("tensor_too_large", {"mean_gt": float(np.mean(wide(array))), "max_gt": 1.0}, array)  # max decides: hit


@settings(max_examples=100, deadline=None)
@given(data=st.data(), array=TENSORS, name=st.sampled_from(["tensor_too_large", "weight_too_large",
                                                           "gradient_too_large", "tensor_too_small",
                                                           "weight_too_small", "gradient_vanishing"]))
def test_too_large_too_small_match_reference(data, array, name):
    suffix = "gt" if name.endswith("large") else "lt"
    names = data.draw(st.lists(st.sampled_from([f"{s}_{suffix}" for s in ("abs_mean", "max", "min", "mean")]),
                               min_size=1, max_size=4, unique=True))
    given = {param: draw_bound(data, array) for param in names}
    if "mean" in given or data.draw(st.booleans()):  # also exactly at the tensor's mean
        finite = wide(array)[np.isfinite(wide(array))]
        if finite.size:
            given[f"mean_{suffix}"] = float(np.mean(finite))
    check(name, given, array)


@settings(max_examples=100, deadline=None)
@given(array=TENSORS, percentage=st.one_of(st.floats(0, 100), st.sampled_from([0.0, 25.0, 50.0, 100.0])),
       name=st.sampled_from(["tensor_all_zero", "weight_initialization"]))
def test_zero_percentage_matches_reference(array, percentage, name):
    check(name, {"zero_percentage_ge": percentage}, array)
    check(name, {}, array)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), array=TENSORS)
def test_weight_initialization_bounds_match_reference(data, array):
    names = data.draw(st.lists(st.sampled_from(["zero_percentage_ge", "max_gt", "min_lt"]), min_size=1,
                               unique=True))
    given = {n: data.draw(st.floats(0, 100)) if n == "zero_percentage_ge" else draw_bound(data, array)
             for n in names}
    check("weight_initialization", given, array)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), array=TENSORS, name=st.sampled_from(["tensor_range", "activation_range"]))
def test_range_matches_reference(data, array, name):
    given = {}
    if data.draw(st.booleans()):
        start, end = sorted([draw_bound(data, array), draw_bound(data, array)])
        given.update(range_start_inclusive=start, range_end_inclusive=end)
        op = data.draw(st.sampled_from(["lt", "gt"]))
        given[f"range_percentage_{op}"] = data.draw(st.one_of(st.floats(0, 100),
                                                              st.sampled_from([0.0, 50.0, 100.0])))
    for op in data.draw(st.lists(st.sampled_from(["lt", "gt"]), min_size=0 if given else 1, unique=True)):
        given[f"max_min_{op}"] = data.draw(st.one_of(st.floats(0, 1e39), st.floats(0, 8)))
    check(name, given, array)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), array=TENSORS)
def test_health_matches_reference(data, array):
    names = data.draw(st.lists(st.sampled_from([f"{n}_count_gt" for n in ("nan", "pos_inf", "neg_inf", "zero",
                                                                           "neg", "pos")]), unique=True))
    given = {n: float(data.draw(st.integers(0, 10))) for n in names}
    check("tensor_health", given, array)


FINITE_TENSORS = arrays(np.float32, array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=8),
                        elements=st.one_of(st.floats(-1e6, 1e6, width=32), st.sampled_from([0.0, -0.0, 1.0])))
NOISE = st.sampled_from([0.0, 0.0, 1e-7, -1e-6, 1e-3, 0.25, -2.0, np.nan, np.inf])


@settings(max_examples=100, deadline=None)
@given(data=st.data(), previous=FINITE_TENSORS,
       name=st.sampled_from(["weight_change_too_large", "weight_change_too_small", "weight_not_changed"]))
def test_change_conditions_match_reference(data, previous, name):
    noise = data.draw(arrays(np.float32, previous.shape, elements=NOISE))
    with np.errstate(invalid="ignore"):
        current = (previous + noise).astype(np.float32)
    if name == "weight_not_changed":
        given = {"rtol": data.draw(st.sampled_from([0.0, 1e-5, 1e-3, 0.5])),
                 "atol": data.draw(st.sampled_from([0.0, 1e-8, 1e-6, 0.25]))}
    else:
        op = "gt" if name.endswith("large") else "lt"
        given = {f"abs_mean_update_ratio_{op}": data.draw(st.one_of(st.floats(0, 2), st.sampled_from([1e-4, 0.1])))}
        if data.draw(st.booleans()):
            given = {}  # the default bound
    check(name, given, current, previous)


# --- initial weights: identical output units, scale against sqrt(2/fan_in) -------------------------------------
WEIGHTS = arrays(np.float32, array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5), elements=ELEMENTS)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), array=WEIGHTS)
def test_weight_symmetric_matches_reference(data, array):
    if array.ndim >= 2 and array.shape[0] >= 2 and data.draw(st.booleans()):  # rows copied from the first
        array = np.broadcast_to(array[:1], array.shape).copy()
    check("weight_symmetric", {}, array)


@pytest.mark.parametrize("array, hit", [
    (np.full((4, 3), 0.1, np.float32), True),  # Constant(0.1)
    (np.tile(np.arange(3, dtype=np.float32), (4, 1)), True),  # one random unit copied: identical units
    (np.tile(np.arange(4, dtype=np.float32)[:, None], (1, 3)), False),  # identical columns only: units differ
    (np.full((1, 5), 0.1, np.float32), False),  # one output unit
    (np.full((5,), 0.1, np.float32), False),  # a bias / BatchNorm gamma: one axis
    (np.full((4, 2, 3, 3), 1.0, np.float32), True),  # a Conv2d weight initialised with 'ones'
    (np.array([[0.0, 1.0], [-0.0, 1.0]], np.float32), True),  # -0.0 == 0.0
    (np.array([[np.nan, 1.0], [np.nan, 1.0]], np.float32), False),  # NaN equals nothing
])
def test_weight_symmetric_is_about_rows(array, hit):
    result = verdict("weight_symmetric", array)
    assert result.hit is hit
    if hit:
        assert result.reasons == (f"all {array.shape[0]} rows (output units) of shape {array.shape} are identical",)


def test_weight_symmetric_reads_two_rows_of_a_random_weight():
    from msdbg.engine import initweights

    class Rows(np.ndarray):
        """Counts the rows read."""
        read = 0

        def __getitem__(self, index):
            Rows.read += 1
            return super().__getitem__(index)

    weight = np.random.default_rng(0).normal(size=(512, 64)).astype(np.float32)
    assert initweights.rows_identical(weight.view(Rows)) is False
    assert Rows.read == 2, "row 0 and row 1, then it stops"


@settings(max_examples=200, deadline=None)
@given(data=st.data(), array=WEIGHTS)
def test_weight_init_scale_matches_reference(data, array):
    ratio = ref_std_ratio(array) if not ref_nonfinite(array) else -np.inf
    given = {"std_ratio_gt": data.draw(st.floats(0, 50))} if data.draw(st.booleans()) else {}
    bound = given.get("std_ratio_gt", 4.0)
    if np.isfinite(ratio) and abs(ratio - bound) <= 1e-5 * max(bound, 1.0):
        return  # summed in float32 vs np.std in float64: the last bits decide at the boundary
    check("weight_init_scale", given, array)


def test_weight_init_scale_reason_names_the_std_and_he_scale():
    weight = np.random.default_rng(0).normal(scale=10.0, size=(16, 16)).astype(np.float32)
    result = verdict("weight_init_scale", weight)
    assert result.hit
    expected = np.sqrt(2 / 16)
    assert result.reasons == (f"std {weight.std():.4g}, {weight.std() / expected:.3g} x sqrt(2/fan_in) = "
                              f"{expected:.4g} (fan_in 16); std_ratio_gt 4",)
    he = np.random.default_rng(0).normal(scale=np.sqrt(2 / 16), size=(16, 16)).astype(np.float32)
    assert not verdict("weight_init_scale", he).hit, "He initialisation itself"
    assert not verdict("weight_init_scale", np.full(16, 100.0, np.float32)).hit, "a bias: no fan_in"
