"""How far apart two tensors are: max abs and relative error, cosine similarity, within tolerance (or, when a side
holds statistics only, how far apart their statistics are).

One chunked pass over both tensors (memory maps are read in windows whose pages are given back), so a pair of
tensors larger than memory is never resident at once. Same-dtype float32/float64 pairs are compared in their
own precision with float64 totals; pairs of different dtypes (float16 against float32, integers) in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from msdbg.engine.stats import TensorStats
from msdbg.errors import UsageError
from msdbg.store.npyfile import release_pages

CHUNK = 1 << 16  # elements per chunk: the temporaries of a chunk stay in cache
_ROW = 8192  # float32 dot products run over rows of this many elements, rows added in float64
WINDOW_ELEMENTS = 1 << 23  # memory-mapped pages are given back after each window of this many elements (32 MB of
# float32 per side: a pair holds about as much as stats.py holds of one tensor)
_NATIVE = ("float32", "float64")


@dataclass(frozen=True)
class Tolerance:
    """When two tensors count as equal: elementwise ``|a-b| <= atol + rtol*|a|`` (A is the reference, as in
    ``numpy.allclose(b, a)``), or, with ``cosine_lt`` set, cosine similarity not below it."""

    rtol: float = 1e-5
    atol: float = 1e-8
    cosine_lt: float | None = None

    @classmethod
    def from_options(cls, rtol: float | None, atol: float | None, cosine_lt: float | None) -> "Tolerance":
        """The tolerance of ``--rtol X --atol Y`` (defaults for the one not given) or ``--cosine-lt C``."""
        if cosine_lt is not None:
            if rtol is not None or atol is not None:
                raise UsageError("--cosine-lt replaces --rtol/--atol: give one or the other")
            if not -1 <= cosine_lt <= 1:
                raise UsageError(f"--cosine-lt {cosine_lt:g}: a cosine similarity lies in [-1, 1]")
            return cls(cosine_lt=cosine_lt)
        for name, value in (("--rtol", rtol), ("--atol", atol)):
            if value is not None and not 0 <= value < float("inf"):
                raise UsageError(f"{name} {value:g}: must be a finite number >= 0")
        return cls(cls.rtol if rtol is None else rtol, cls.atol if atol is None else atol)

    def describe(self) -> str:
        if self.cosine_lt is not None:
            return f"cosine >= {self.cosine_lt:g}"
        return f"|a-b| <= {self.atol:g} + {self.rtol:g}*|a|"


@dataclass
class PairMetrics:
    """The comparison of one tensor pair. Error metrics cover positions finite on both sides."""

    shape_a: tuple[int, ...]
    shape_b: tuple[int, ...]
    dtype_a: str
    dtype_b: str
    max_abs: float | None = None
    max_rel: float | None = None
    cosine: float | None = None
    out_of_tolerance: int = 0  # elements (finite on both sides) outside rtol/atol
    nonfinite_a: int = 0
    nonfinite_b: int = 0
    nonfinite_mismatch: int = 0  # positions where one side is NaN/Inf and the other is not the same value
    within: bool = True
    problem: str | None = None  # shapes that cannot be compared
    basis: str = "values"  # or "statistics": a side held statistics only (see compare_statistics)

    def to_json(self) -> dict:
        return {"shape_a": list(self.shape_a), "shape_b": list(self.shape_b), "dtype_a": self.dtype_a,
                "dtype_b": self.dtype_b, "max_abs": self.max_abs, "max_rel": self.max_rel, "cosine": self.cosine,
                "within": self.within, "nonfinite_a": self.nonfinite_a, "nonfinite_b": self.nonfinite_b,
                "nonfinite_mismatch": self.nonfinite_mismatch, "problem": self.problem, "basis": self.basis}


def compare_arrays(a: np.ndarray, b: np.ndarray, tolerance: Tolerance) -> PairMetrics:
    """Compare ``b`` against the reference ``a`` in one chunked pass.

    ``max_rel`` is the largest ``|a-b| / max(|a|, |b|)`` (0 where both are 0), so it is bounded and symmetric;
    positions where exactly one side is NaN/Inf (or they hold different non-finite values) make the pair
    diverge whatever the tolerance.
    """
    metrics = PairMetrics(tuple(a.shape), tuple(b.shape), a.dtype.name, b.dtype.name)
    if a.size != b.size:
        metrics.problem = f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}"
        metrics.within = False
        return metrics
    totals = _Totals(tolerance)
    with np.errstate(all="ignore"):
        for x, y in _chunk_pairs(a, b):
            totals.add(x, y)
    totals.finish(metrics)
    return metrics


#: Statistics compared when a side holds statistics only, and what computing them from tensor data needs.
COMPARED_STATISTICS = ("min", "max", "mean", "l2norm")
STATISTICS_NEEDED = frozenset({"min", "max", "sum", "sq_sum", "finite_count", "nonfinite"})
_COUNTS = ("nan", "pos_inf", "neg_inf")


def compare_statistics(a: TensorStats, b: TensorStats, tolerance: Tolerance) -> PairMetrics:
    """Compare two tensors by the statistics both sides hold (min, max, mean, L2 norm, NaN/Inf counts).

    ``max_abs`` / ``max_rel`` are the largest differences among those statistics; each must lie within
    ``atol + rtol*|a|`` (the rtol/atol of the tolerance also under ``--cosine-lt``: statistics give no cosine).
    """
    metrics = PairMetrics(tuple(a.shape), tuple(b.shape), a.dtype, b.dtype, basis="statistics")
    if a.size != b.size:
        metrics.problem, metrics.within = f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}", False
        return metrics
    compared = []
    for name in COMPARED_STATISTICS:
        x, y = getattr(a, name), getattr(b, name)
        if x is None or y is None:
            continue
        compared.append(name)
        if not (math.isfinite(x) and math.isfinite(y)):
            metrics.nonfinite_mismatch += 0 if x == y or (math.isnan(x) and math.isnan(y)) else 1
            continue
        difference = abs(x - y)
        metrics.max_abs = max(metrics.max_abs or 0.0, difference)
        scale = max(abs(x), abs(y))
        metrics.max_rel = max(metrics.max_rel or 0.0, difference / scale if scale else 0.0)
        metrics.out_of_tolerance += difference > tolerance.atol + tolerance.rtol * abs(x)
    for name in _COUNTS:
        x, y = getattr(a, name), getattr(b, name)
        if x is not None and y is not None:
            metrics.nonfinite_a, metrics.nonfinite_b = metrics.nonfinite_a + x, metrics.nonfinite_b + y
            metrics.nonfinite_mismatch += abs(x - y)
    if not compared:
        metrics.problem = "the two sides hold no statistic in common"
    metrics.within = not metrics.out_of_tolerance and not metrics.nonfinite_mismatch
    return metrics


class _Totals:
    """Running maxima and sums over the chunks."""

    def __init__(self, tolerance: Tolerance):
        self.tolerance = tolerance
        self.max_abs = self.max_rel = 0.0
        self.dot_ab = self.dot_aa = self.dot_bb = 0.0
        self.compared = self.out = 0
        self.nonfinite_a = self.nonfinite_b = self.mismatch = 0
        self._buffers: dict[tuple[str, str], np.ndarray] = {}

    def _buffer(self, name: str, like: np.ndarray, dtype: np.dtype | None = None) -> np.ndarray:
        """A scratch array of ``like``'s length (and dtype unless given), reused across chunks."""
        dtype = np.dtype(dtype or like.dtype)
        key = (name, dtype.str)
        buffer = self._buffers.get(key)
        if buffer is None or len(buffer) < len(like):
            buffer = self._buffers[key] = np.empty(max(len(like), CHUNK), dtype)
        return buffer[:len(like)]

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        d = np.subtract(x, y, out=self._buffer("d", x))
        np.abs(d, out=d)
        largest = np.maximum.reduce(d) if len(d) else 0.0
        if not np.isfinite(largest):  # NaN/Inf on a side (or an overflowing difference): compare finite parts
            self._add_nonfinite(x, y)
            return
        ax = np.abs(x, out=self._buffer("ax", x))
        ay = np.abs(y, out=self._buffer("ay", x))
        self._add_dots(x, y)
        self.max_abs = max(self.max_abs, float(largest))
        self.compared += len(d)
        if largest == 0:
            return
        denominator = np.maximum(ax, ay, out=ay)
        relative = np.divide(d, denominator, out=denominator)  # 0/0 (both zero) is NaN, skipped by fmax
        self.max_rel = max(self.max_rel, float(np.fmax.reduce(relative)))
        if self.tolerance.cosine_lt is None:
            bound = np.multiply(ax, self.tolerance.rtol, out=ax)
            bound += self.tolerance.atol
            self.out += int(np.count_nonzero(np.greater(d, bound, out=self._buffer("cmp", d, bool))))

    def _add_dots(self, x: np.ndarray, y: np.ndarray) -> None:
        self.dot_ab += _dot(x, y)
        self.dot_aa += _dot(x, x)
        self.dot_bb += _dot(y, y)

    def _add_nonfinite(self, x: np.ndarray, y: np.ndarray) -> None:
        finite_x, finite_y = np.isfinite(x), np.isfinite(y)
        both = finite_x & finite_y
        same = (x == y) | (np.isnan(x) & np.isnan(y))
        self.nonfinite_a += int(len(x) - np.count_nonzero(finite_x))
        self.nonfinite_b += int(len(y) - np.count_nonzero(finite_y))
        self.mismatch += int(np.count_nonzero(~both & ~same))
        xs, ys = x[both].astype(np.float64), y[both].astype(np.float64)
        if len(xs):
            self.add(xs, ys)

    def finish(self, metrics: PairMetrics) -> None:
        metrics.nonfinite_a, metrics.nonfinite_b, metrics.nonfinite_mismatch = \
            self.nonfinite_a, self.nonfinite_b, self.mismatch
        if self.compared:
            metrics.max_abs, metrics.max_rel = self.max_abs, self.max_rel
            metrics.cosine = _cosine(self.dot_ab, self.dot_aa, self.dot_bb)
        metrics.out_of_tolerance = self.out
        if self.tolerance.cosine_lt is not None:
            metrics.within = metrics.cosine is None or metrics.cosine >= self.tolerance.cosine_lt
        else:
            metrics.within = self.out == 0
        metrics.within = metrics.within and self.mismatch == 0


def _cosine(ab: float, aa: float, bb: float) -> float:
    """Cosine similarity; 1 when both are all zero, 0 when only one is."""
    if aa == 0 and bb == 0:
        return 1.0
    if aa == 0 or bb == 0:
        return 0.0
    return float(min(1.0, max(-1.0, ab / np.sqrt(aa * bb))))


def _dot(x: np.ndarray, y: np.ndarray) -> float:
    """x . y with float64 totals: single-threaded BLAS dot products on rows of _ROW elements."""
    if x.dtype != np.float32:
        return float(np.dot(x, y))
    split = len(x) - len(x) % _ROW
    rows = np.add.reduce(np.vecdot(x[:split].reshape(-1, _ROW), y[:split].reshape(-1, _ROW)),
                         dtype=np.float64) if split else 0.0
    return float(rows + np.dot(x[split:].astype(np.float64), y[split:]))


def _chunk_pairs(a: np.ndarray, b: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Matching flat chunks of both tensors in C order, as float values of one dtype.

    Same-dtype float32/float64 chunks are views; others are converted to float64 (bfloat16 stored as 2-byte
    raw bits is not decoded here: its dtype differs from any float and it is compared as integers).
    """
    flat_a, flat_b = _flat(a), _flat(b)
    same = a.dtype == b.dtype and a.dtype.name in _NATIVE and a.dtype.isnative
    for start in range(0, len(flat_a), WINDOW_ELEMENTS):
        window_a, window_b = flat_a[start:start + WINDOW_ELEMENTS], flat_b[start:start + WINDOW_ELEMENTS]
        for at in range(0, len(window_a), CHUNK):
            x, y = window_a[at:at + CHUNK], window_b[at:at + CHUNK]
            if same:
                yield x, y
            else:
                yield x.astype(np.float64), y.astype(np.float64)
        release_pages(window_a)
        release_pages(window_b)


def _flat(array: np.ndarray) -> np.ndarray:
    """The elements in C order: a view for C-contiguous arrays (memory maps stay mapped), else a copy."""
    if array.flags.c_contiguous:
        return array.reshape(-1)
    return np.ascontiguousarray(array).reshape(-1)
