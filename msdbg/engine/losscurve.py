"""The guide's loss-curve symptoms, read from the loss of every training step: NaN/Inf, exactly 0, exploding,
not converging, oscillating, each with the step where it started (for an exploding loss, the first step of the
uninterrupted rise that crosses the bound; for a zigzag, the first of ZIGZAG_START reversals in a row).

Thresholds are chosen to stay silent on healthy training: the trend rules need a run of at least MIN_STEPS
finite values and compare averages of whole quarters of the run, never single noisy steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import fmean, median

MIN_STEPS = 20  # the trend rules (not converging, oscillating) need at least this many finite losses
ZERO_STEPS = 3  # a loss of exactly 0 this many steps in a row
EXPLODE_FACTOR = 10.0  # a loss this many times its early median, EXPLODE_STEPS steps in a row
EXPLODE_STEPS = 2
EARLY_STEPS = 5
FLAT_DECREASE = 0.01  # the last quarter's mean under 1% below the first quarter's: not converging
ZIGZAG_SHARE = 0.8  # share of consecutive differences that change sign
ZIGZAG_AMPLITUDE = 0.2  # mean |step-to-step change| relative to the mean loss
ZIGZAG_START = 4  # the zigzag starts at the first of this many direction reversals in a row


@dataclass(frozen=True)
class LossSymptom:
    """One symptom of the loss curve: which (``rule`` of diagnose), from which step, in words."""

    rule: str
    step: int
    text: str


def loss_symptoms(losses: list[tuple[int, float]]) -> list[LossSymptom]:
    """The symptoms of a loss series of (training step, loss value), in step order."""
    found = [_nonfinite(losses), _zero(losses)]
    finite = [(step, value) for step, value in losses if math.isfinite(value)]
    found += [_exploding(finite), _not_converging(finite), _oscillating(finite)]
    return [symptom for symptom in found if symptom is not None]


def _nonfinite(losses: list[tuple[int, float]]) -> LossSymptom | None:
    bad = next(((step, value) for step, value in losses if not math.isfinite(value)), None)
    if bad is None:
        return None
    return LossSymptom("loss_nonfinite", bad[0], f"the loss is {bad[1]} from step {bad[0]}")


def _zero(losses: list[tuple[int, float]]) -> LossSymptom | None:
    run_start, run = None, 0
    for step, value in losses:
        run, run_start = (run + 1, step if run == 0 else run_start) if value == 0.0 else (0, None)
        if run >= ZERO_STEPS:
            return LossSymptom("loss_zero", run_start, f"the loss is exactly 0 from step {run_start}")
    return None


def _exploding(finite: list[tuple[int, float]]) -> LossSymptom | None:
    if len(finite) <= EARLY_STEPS:
        return None
    early = median(abs(value) for _, value in finite[:EARLY_STEPS])
    if early <= 0.0:
        return None
    run = []
    for index in range(EARLY_STEPS, len(finite)):
        run = run + [index] if abs(finite[index][1]) > EXPLODE_FACTOR * early else []
        if len(run) >= EXPLODE_STEPS:
            crossed, start = finite[run[0]][0], finite[_rise_start(finite, run[0])][0]
            since = f", rising every step since step {start}" if start != crossed else ""
            return LossSymptom("loss_exploding", start, f"the loss grows past {EXPLODE_FACTOR:g}x its early median "
                                                        f"({early:.4g}) from step {crossed}{since}")
    return None


def _rise_start(finite: list[tuple[int, float]], index: int) -> int:
    """The first index of the uninterrupted rise (each value above the one before) that ends at ``index``."""
    while index >= 2 and finite[index - 1][1] > finite[index - 2][1]:
        index -= 1
    return index


def _quarters(finite: list[tuple[int, float]]) -> tuple[float, float] | None:
    if len(finite) < MIN_STEPS:
        return None
    quarter = len(finite) // 4
    return fmean(v for _, v in finite[:quarter]), fmean(v for _, v in finite[-quarter:])


def _not_converging(finite: list[tuple[int, float]]) -> LossSymptom | None:
    means = _quarters(finite)
    if means is None:
        return None
    first, last = means
    if first <= 0.0 or last < first * (1.0 - FLAT_DECREASE):
        return None
    return LossSymptom("loss_not_converging", finite[0][0],
                       f"the loss does not fall over {len(finite)} steps (mean of the first quarter {first:.4g}, "
                       f"of the last {last:.4g})")


def _oscillating(finite: list[tuple[int, float]]) -> LossSymptom | None:
    if len(finite) < MIN_STEPS:
        return None
    values = [value for _, value in finite]
    changes = [b - a for a, b in zip(values, values[1:])]
    reversals = [a * b < 0 for a, b in zip(changes, changes[1:])]
    flips = sum(reversals)
    level = fmean(abs(v) for v in values)
    amplitude = fmean(abs(c) for c in changes)
    if flips < ZIGZAG_SHARE * (len(changes) - 1) or not level or amplitude < ZIGZAG_AMPLITUDE * level:
        return None
    # reversal i turns at value i + 1: a run of them starting at i zigzags from value i on
    start = next((finite[i][0] for i in range(len(reversals)) if all(reversals[i:i + ZIGZAG_START])), finite[0][0])
    return LossSymptom("loss_oscillating", start,
                       f"the loss zigzags from step {start}: {flips} of {len(changes) - 1} changes reverse direction, "
                       f"by {amplitude:.4g} on average ({100 * amplitude / level:.0f}% of its level)")
