"""What a weight's initial value says about its initialisation: identical output units, a scale far above He's.

A weight's output units are the rows along its first axis (MindSpore's Dense ``(out, in)``, Conv ``(out, in, kh,
kw)`` and LSTM ``(4*hidden, in)`` layouts): units that start identical read the same input, get identical
gradients and stay identical (symmetry not broken). Identical columns alone are no such problem: column ``j``
holds every unit's weight for input ``j``, and different inputs give those weights different gradients.
"""

from __future__ import annotations

import math

import numpy as np


def rows_identical(array: np.ndarray) -> bool | None:
    """Whether every row along axis 0 equals row 0 (element by element: -0.0 == 0.0, NaN equals nothing); None when
    the tensor has no rows to compare (fewer than 2 axes or 2 rows). Compares row 1 first, then blocks of rows that
    double up to ROWS_BLOCK_ELEMENTS, stopping at the first block that differs: a random weight costs two rows."""
    if array.ndim < 2 or array.shape[0] < 2 or array.size == 0:
        return None
    rows = array.reshape(array.shape[0], -1)
    first = np.asarray(rows[0])
    limit = max(1, ROWS_BLOCK_ELEMENTS // rows.shape[1])
    start, count = 1, 1
    while start < rows.shape[0]:
        if not (rows[start:start + count] == first).all():
            return False
        start, count = start + count, min(2 * count, limit)
    return True


#: The most elements one comparison of rows holds (a bool temporary of this many bytes).
ROWS_BLOCK_ELEMENTS = 262144


def he_std(shape: tuple[int, ...]) -> float | None:
    """sqrt(2 / fan_in), He initialisation's standard deviation (fan_in: the product of all axes but the first, as
    MindSpore's initialisers count it); None for tensors of fewer than 2 axes."""
    fan_in = math.prod(shape[1:]) if len(shape) >= 2 else 0
    return math.sqrt(2.0 / fan_in) if fan_in else None


def std(total: float | None, sq_total: float | None, count: int | None) -> float | None:
    """The standard deviation of ``count`` values from their sum and sum of squares."""
    if total is None or sq_total is None or not count:
        return None
    mean = total / count
    return math.sqrt(max(sq_total / count - mean * mean, 0.0))


def std_ratio(total: float | None, sq_total: float | None, count: int | None, shape: tuple[int, ...]) -> float | None:
    """The standard deviation over He's (``he_std``); None when either is unknown."""
    spread, expected = std(total, sq_total, count), he_std(tuple(shape))
    return None if spread is None or expected is None else spread / expected


def scale_reason(total: float, sq_total: float, count: int, shape: tuple[int, ...]) -> str:
    """'std X, R x sqrt(2/fan_in) = E (fan_in F)' for a hit's reason."""
    shape = tuple(shape)
    return (f"std {std(total, sq_total, count):.4g}, {std_ratio(total, sq_total, count, shape):.3g} x "
            f"sqrt(2/fan_in) = {he_std(shape):.4g} (fan_in {math.prod(shape[1:])})")
