"""Loss-curve symptoms on loss series: each symptom found where planted, with its first step; healthy noisy
curves give none; any series of floats is judged without an exception."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from msdbg.engine.losscurve import loss_symptoms


def series(values) -> list[tuple[int, float]]:
    return [(step, float(value)) for step, value in enumerate(values)]


def rules(values) -> dict[str, int]:
    return {s.rule: s.step for s in loss_symptoms(series(values))}


def noisy_decay(steps=300, seed=0):
    rng = np.random.default_rng(seed)
    return 2.0 * np.exp(-np.arange(steps) / 80) + 0.1 + rng.normal(0, 0.05, steps)


def test_healthy_noisy_curves_have_no_symptom():
    for seed in range(20):
        assert rules(noisy_decay(seed=seed)) == {}
    assert rules([0.9, 0.7, 0.8]) == {}  # too short to judge a trend


def test_nan_and_zero_start_where_they_start():
    values = list(noisy_decay(30))
    values[17] = math.nan
    assert rules(values)["loss_nonfinite"] == 17
    zeros = [1.0, 0.5, 0.0, 0.2, 0.0, 0.0, 0.0, 0.0]
    assert rules(zeros) == {"loss_zero": 4}


def test_exploding_from_the_first_of_two_large_steps():
    values = [1.0, 0.9, 0.95, 0.9, 0.85, 0.8, 12.0, 0.8, 30.0, 300.0, 3000.0]
    assert rules(values)["loss_exploding"] == 8


def test_exploding_names_the_step_where_the_rise_began():
    values = [1.0, 0.9, 0.95, 0.9, 0.85, 0.8, 0.7, 0.75, 1.5, 3.0, 6.0, 12.0, 24.0]
    found = [s for s in loss_symptoms(series(values)) if s.rule == "loss_exploding"]
    assert [s.step for s in found] == [7]
    assert found[0].text.endswith("from step 11, rising every step since step 7")


def test_flat_noisy_loss_is_not_converging():
    rng = np.random.default_rng(1)
    assert rules(0.69 + rng.normal(0, 0.02, 100)) == {"loss_not_converging": 0}


def test_zigzag_is_oscillating():
    values = [1.0 + (0.5 if i % 2 else -0.3) - i * 0.005 for i in range(60)]
    assert "loss_oscillating" in rules(values)


def test_zigzag_names_the_step_where_it_started():
    values = [2.0, 1.9, 1.8, 1.7, 1.6] + [1.0 + (0.5 if i % 2 else -0.3) for i in range(40)]
    found = [s for s in loss_symptoms(series(values)) if s.rule == "loss_oscillating"]
    assert [s.step for s in found] == [4] and "from step 4" in found[0].text  # 1.6 is the first high of the zigzag


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=80))
def test_any_series_is_judged(values):
    for symptom in loss_symptoms(series(values)):
        assert symptom.rule.startswith("loss_") and 0 <= symptom.step < len(values)
