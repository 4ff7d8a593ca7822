"""Fused, chunked, one-pass statistics of a tensor.

``compute_stats`` walks an array (usually a read-only memmap of a dump file, possibly larger than memory) in
chunks of ``CHUNK_ELEMENTS`` and computes only the statistics asked for, so memory stays at a few chunks
whatever the tensor's size. Conventions:

* NaN, +Inf and -Inf are counted apart (``nan``, ``pos_inf``, ``neg_inf``); every other statistic covers the
  FINITE elements only, so ``zero + neg + pos + nan + pos_inf + neg_inf == size``.
* ``-0.0`` counts as zero; ``neg`` and ``pos`` count finite values below and above 0 (-Inf is in ``neg_inf``).
* Sums are accumulated in float64: squares of large float16/bfloat16/float32 values do not overflow.
* Integer and bool tensors are read as float64 (bool as 0/1, int64 beyond 2**53 rounds); they hold no NaN/Inf,
  so those counts are 0.
* bfloat16: NumPy has no such dtype, and a dump may hold its raw bits as uint16/int16 or 2-byte void. With
  ``dtype_hint='bfloat16'`` those bits are widened to float32 chunk by chunk and ``dtype`` says 'bfloat16'.
* ``change`` compares with ``previous``: an element is within tolerance when both values are finite and
  ``|cur - prev| <= atol + rtol * |prev|``; any NaN or Inf on either side counts as exceeding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Iterable

import numpy as np

STAT_NAMES: frozenset[str] = frozenset({
    "nonfinite", "nan", "pos_inf", "neg_inf", "zero", "neg", "pos", "min", "max", "sum", "abs_sum", "sq_sum",
    "finite_count", "range_count", "change",
})
# The fields of TensorStats each need fills, where they differ from the need's name.
_FIELDS = {"nonfinite": ("nan", "pos_inf", "neg_inf"), "change": ("change_exceed", "change_abs_sum", "prev_abs_sum")}
_COUNTS = ("nan", "pos_inf", "neg_inf", "zero", "neg", "pos", "finite_count", "range_count", "change_exceed")
_SUMS = frozenset({"sum", "abs_sum", "sq_sum"})
_VALUE_STATS = frozenset({"zero", "neg", "pos", "min", "max", "finite_count", "range_count"}) | _SUMS

# 64K elements: 256 KB of float32 plus a 512 KB float64 copy stay in this machine's 1 MB L2 cache; 32K paid
# more in per-call overhead and 128K-256K gained nothing (benchmarks/stats_throughput.py, --chunk).
CHUNK_ELEMENTS = 65536
# OpenBLAS splits a dot product of more than 10000 elements across threads. The second core then holds our
# reused buffers in its cache, and the next writes into them ran 3-10x slower (measured), so _dot feeds BLAS
# rows of _ROW elements: one call, one thread, no cache ping-pong.
_ROW = 8192


@dataclass
class TensorStats:
    """Statistics of one tensor. A field is None when it was not requested."""

    size: int
    dtype: str
    shape: tuple[int, ...]
    nan: int | None = None
    pos_inf: int | None = None
    neg_inf: int | None = None
    zero: int | None = None  # == 0, -0.0 included
    neg: int | None = None  # finite and < 0
    pos: int | None = None  # finite and > 0
    min: float | None = None  # finite elements only; None when there is none
    max: float | None = None
    sum: float | None = None
    abs_sum: float | None = None
    sq_sum: float | None = None
    finite_count: int | None = None
    range_count: int | None = None  # finite and inside value_range (both ends included)
    change_exceed: int | None = None  # elements not within atol + rtol * |prev| of previous (NaN/Inf: exceed)
    change_abs_sum: float | None = None  # sum of |cur - prev| where both are finite
    prev_abs_sum: float | None = None  # sum of |prev| over finite prev elements

    @property
    def mean(self) -> float | None:
        """Mean of the finite elements (needs sum and finite_count)."""
        return _per_element(self.sum, self.finite_count)

    @property
    def abs_mean(self) -> float | None:
        """Mean of |x| over the finite elements (needs abs_sum and finite_count)."""
        return _per_element(self.abs_sum, self.finite_count)

    @property
    def l2norm(self) -> float | None:
        return None if self.sq_sum is None else math.sqrt(self.sq_sum)

    @property
    def nonfinite_count(self) -> int | None:
        """NaN + Inf count; None unless all three counts were computed."""
        counts = (self.nan, self.pos_inf, self.neg_inf)
        return None if None in counts else sum(counts)

    @property
    def has_nonfinite(self) -> bool | None:
        count = self.nonfinite_count
        return None if count is None else count > 0

    def as_dict(self) -> dict:
        """JSON-friendly: computed fields and derived values only; NaN/Inf floats as 'nan', 'inf', '-inf'."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update((name, getattr(self, name))
                      for name in ("mean", "abs_mean", "l2norm", "nonfinite_count", "has_nonfinite"))
        return {name: _json(value) for name, value in values.items() if value is not None}


def _per_element(total: float | None, count: int | None) -> float | None:
    return None if total is None or not count else total / count


def _json(value: object) -> object:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # 'nan', 'inf', '-inf'
    return value


def compute_stats(array: np.ndarray, needs: Iterable[str], *, value_range: tuple[float, float] | None = None,
                  previous: np.ndarray | None = None, rtol: float = 1e-5, atol: float = 1e-8,
                  chunk_elements: int | None = None, dtype_hint: str | None = None) -> TensorStats:
    """Compute the statistics named in ``needs`` (see STAT_NAMES) in one chunked pass over ``array``.

    ``nonfinite`` fills the nan/pos_inf/neg_inf counts by the cheapest exact route; ``range_count`` needs
    ``value_range``; ``change`` needs ``previous`` (same shape) and fills change_exceed, change_abs_sum and
    prev_abs_sum. ``dtype_hint`` is the tensor's dtype as its dump names it ('bfloat16' decodes raw bits).
    """
    needs = frozenset(needs)
    if needs - STAT_NAMES:
        raise ValueError(f"unknown statistics {sorted(needs - STAT_NAMES)}; accepted: {', '.join(sorted(STAT_NAMES))}")
    array = np.asarray(array)
    if "change" in needs and (previous is None or np.shape(previous) != array.shape):
        got = "none" if previous is None else f"shape {np.shape(previous)}"
        raise ValueError(f"'change' needs previous with the array's shape {array.shape}; got {got}")
    if "range_count" in needs and value_range is None:
        raise ValueError("'range_count' needs value_range=(low, high)")
    chunk = CHUNK_ELEMENTS if chunk_elements is None else int(chunk_elements)
    if chunk < 1:
        raise ValueError(f"chunk_elements must be at least 1, got {chunk_elements}")

    sources = [_Source(array, dtype_hint)]
    if "change" in needs:
        sources.append(_Source(np.asarray(previous), dtype_hint))
    reducer = _Reducer(needs, sources[0].is_float, value_range, rtol, atol, chunk)
    iterator = np.nditer([s.storage for s in sources], flags=["external_loop", "buffered", "zerosize_ok"],
                         op_flags=[["readonly"]] * len(sources), op_dtypes=[s.chunk_dtype for s in sources],
                         casting="same_kind", buffersize=chunk, order="K")
    with np.errstate(all="ignore"):
        for chunks in iterator:
            if len(sources) == 1:
                reducer.add(sources[0].decode(chunks, reducer))
            else:
                current = sources[0].decode(chunks[0], reducer, "bits")
                reducer.add(current)
                reducer.add_change(current, sources[1].decode(chunks[1], reducer, "prev_bits"))
    return reducer.result(array.size, sources[0].dtype_name, array.shape)


class _Source:
    """How to read one operand: what nditer iterates, in which dtype, and how a chunk becomes float values."""

    def __init__(self, array: np.ndarray, dtype_hint: str | None):
        dtype = array.dtype
        self.bfloat16_bits = (dtype_hint or "").lower() == "bfloat16" and dtype.itemsize == 2 and dtype.kind in "iuV"
        if self.bfloat16_bits:
            self.storage, self.chunk_dtype, self.dtype_name = array.view(np.uint16), np.dtype(np.uint16), "bfloat16"
        elif dtype.kind in "fbiu":
            # float16 is widened to float32 by nditer's buffers; integers and bool are read as float64
            wide = np.float32 if dtype.kind == "f" and dtype.itemsize <= 4 else np.float64
            self.storage, self.chunk_dtype, self.dtype_name = array, np.dtype(wide), dtype.name
        else:
            raise ValueError(f"cannot compute statistics of dtype {dtype}: only float, integer and bool tensors "
                             "(and bfloat16 raw bits with dtype_hint='bfloat16') are supported")
        self.is_float = self.bfloat16_bits or dtype.kind == "f"

    def decode(self, chunk: np.ndarray, reducer: _Reducer, buffer: str = "bits") -> np.ndarray:
        if not self.bfloat16_bits:
            return chunk
        # bfloat16 is the upper half of a float32
        bits = reducer.buffer(buffer, len(chunk), np.uint32)
        return np.left_shift(chunk, 16, out=bits, dtype=np.uint32).view(np.float32)


class _Reducer:
    """Running totals over the chunks."""

    def __init__(self, needs: frozenset[str], is_float: bool, value_range: tuple[float, float] | None,
                 rtol: float, atol: float, chunk: int):
        self.needs, self.is_float, self.chunk = needs, is_float, chunk
        self.fields = {name for need in needs for name in _FIELDS.get(need, (need,))}
        self.value_stats = needs & _VALUE_STATS
        self.minmax = bool(needs & {"min", "max"})
        if value_range is not None:  # compared in float64, however narrow the values
            self.low, self.high = np.float64(value_range[0]), np.float64(value_range[1])
        self.rtol, self.atol = rtol, atol
        self.totals: dict[str, float | None] = dict.fromkeys(_COUNTS, 0)
        self.totals.update(dict.fromkeys(("sum", "abs_sum", "sq_sum", "change_abs_sum", "prev_abs_sum"), 0.0))
        self.totals["min"] = self.totals["max"] = None
        self._buffers: dict[str, np.ndarray] = {}

    def buffer(self, name: str, length: int, dtype: type) -> np.ndarray:
        """A reusable scratch array of ``length`` elements (allocated once per call, not per chunk)."""
        buffer = self._buffers.get(name)
        if buffer is None or len(buffer) < length:
            buffer = self._buffers[name] = np.empty(max(length, self.chunk), dtype)
        return buffer[:length]

    def add(self, values: np.ndarray) -> None:
        """One chunk of float32/float64 values."""
        low = high = None
        if self.is_float:
            # Probe the chunk for NaN/Inf with a reduction it needs anyway, or the cheapest exact one.
            if self.minmax:
                low, high = np.minimum.reduce(values), np.maximum.reduce(values)
                finite = math.isfinite(low) and math.isfinite(high)  # NaN propagates; an Inf is the min or max
            else:
                # Any NaN/Inf makes a sum of squares NaN/Inf (squares are >= 0, so no Inf - Inf cancels out);
                # a finite chunk can only fail through overflow, which _split_nonfinite then finds to be none.
                finite = math.isfinite(_dot(values, values))
            if not finite:
                values, low, high = self._split_nonfinite(values), None, None
        if self.value_stats and len(values):
            self._add_finite(values, low, high)

    def _split_nonfinite(self, values: np.ndarray) -> np.ndarray:
        """Count NaN/+Inf/-Inf and return the finite values (the slow path, for chunks that hold any)."""
        finite = np.isfinite(values, out=self.buffer("finite", len(values), bool))
        nonfinite = len(values) - np.count_nonzero(finite)
        if not nonfinite:
            return values
        mask = self.buffer("mask", len(values), bool)
        nan = np.count_nonzero(np.isnan(values, out=mask))
        pos_inf = np.count_nonzero(np.equal(values, np.inf, out=mask))
        self.totals["nan"] += nan
        self.totals["pos_inf"] += pos_inf
        self.totals["neg_inf"] += nonfinite - nan - pos_inf
        return values[finite]

    def _add_finite(self, values: np.ndarray, low: float | None, high: float | None) -> None:
        totals, needs, count = self.totals, self.needs, len(values)
        totals["finite_count"] += count
        if self.minmax:
            if low is None:
                low, high = np.minimum.reduce(values), np.maximum.reduce(values)
            totals["min"] = float(low) if totals["min"] is None else min(totals["min"], float(low))
            totals["max"] = float(high) if totals["max"] is None else max(totals["max"], float(high))
        mask = self.buffer("mask", count, bool)
        if needs & {"zero", "pos"}:
            zero = np.count_nonzero(np.equal(values, 0, out=mask))
            totals["zero"] += zero
        if needs & {"neg", "pos"}:
            neg = np.count_nonzero(np.less(values, 0, out=mask))
            totals["neg"] += neg
        if "pos" in needs:
            totals["pos"] += count - zero - neg
        if "range_count" in needs:
            inside = np.greater_equal(values, self.low, out=mask)
            inside &= np.less_equal(values, self.high, out=self.buffer("mask2", count, bool))
            totals["range_count"] += np.count_nonzero(inside)
        if needs & _SUMS:
            wide = values
            if values.dtype != np.float64:
                wide = self.buffer("wide", count, np.float64)
                wide[...] = values
            if "sum" in needs:
                totals["sum"] += float(np.add.reduce(wide))
            if "sq_sum" in needs:
                totals["sq_sum"] += _dot(wide, wide)
            if "abs_sum" in needs:  # last: in place when wide is our own copy
                out = self.buffer("abs", count, np.float64) if wide is values else wide
                totals["abs_sum"] += float(np.add.reduce(np.abs(wide, out=out)))

    def add_change(self, current: np.ndarray, previous: np.ndarray) -> None:
        """One chunk of the tensor and the same chunk of its previous value."""
        count = len(current)
        cur, prev = self.buffer("cur", count, np.float64), self.buffer("prev", count, np.float64)
        cur[...], prev[...] = current, previous
        diff = self.buffer("diff", count, np.float64)
        np.abs(np.subtract(cur, prev, out=diff), out=diff)
        np.abs(prev, out=prev)
        tolerance = np.multiply(prev, self.rtol, out=self.buffer("tolerance", count, np.float64))
        tolerance += self.atol
        within = np.less_equal(diff, tolerance, out=self.buffer("mask", count, bool))
        diff_sum = np.add.reduce(diff)
        if math.isfinite(diff_sum):  # then both sides are finite everywhere in this chunk
            self.totals["change_abs_sum"] += float(diff_sum)
            self.totals["prev_abs_sum"] += float(np.add.reduce(prev))
        else:
            prev_finite = np.isfinite(prev)
            both = np.logical_and(prev_finite, np.isfinite(cur), out=self.buffer("mask2", count, bool))
            within &= both
            self.totals["change_abs_sum"] += float(np.add.reduce(diff[both]))
            self.totals["prev_abs_sum"] += float(np.add.reduce(prev[prev_finite]))
        self.totals["change_exceed"] += count - np.count_nonzero(within)

    def result(self, size: int, dtype: str, shape: tuple[int, ...]) -> TensorStats:
        values = {name: int(value) if name in _COUNTS else value
                  for name, value in self.totals.items() if name in self.fields}
        return TensorStats(size=int(size), dtype=dtype, shape=tuple(shape), **values)


def _dot(x: np.ndarray, y: np.ndarray) -> float:
    """x . y through single-threaded BLAS calls on rows of _ROW elements (see _ROW)."""
    split = len(x) - len(x) % _ROW
    rows = np.add.reduce(np.vecdot(x[:split].reshape(-1, _ROW), y[:split].reshape(-1, _ROW))) if split else 0.0
    return float(rows + np.dot(x[split:], y[split:]))
