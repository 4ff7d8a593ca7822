"""Fused, chunked, one-pass statistics of a tensor.

``compute_stats`` walks an array (usually a read-only memmap of a dump file, possibly larger than memory) in
chunks of ``CHUNK_ELEMENTS`` and computes only the statistics asked for, so memory stays at a few chunks
whatever the tensor's size. The compiled kernel (msdbg/_statskernel.c, built by ``pip install`` where a C
compiler exists) does it in one pass per contiguous window, with the GIL released from 256 KB up; without it, or
with ``MSDBG_NO_CEXT=1``, NumPy does (the 'change' comparison always uses NumPy). Both follow these conventions:

* NaN, +Inf and -Inf are counted apart (``nan``, ``pos_inf``, ``neg_inf``); every other statistic covers the
  FINITE elements only, so ``zero + neg + pos + nan + pos_inf + neg_inf == size``.
* ``-0.0`` counts as zero; ``neg`` and ``pos`` count finite values below and above 0 (-Inf is in ``neg_inf``).
* Sums: float64 data is summed in float64. float32 (and float16/bfloat16, widened to float32) is summed in float32
  within rows of ``_ROW`` elements by BLAS (the kernel: within blocks of 1024 across its SIMD lanes; in float64
  for buffers under 8192 values) and in float64 across rows, blocks and chunks, about 3x faster than widening;
  the relative error stays below 1e-5 of the sum of magnitudes (tested against float64). A chunk whose float32
  squares could overflow (any |x| > 2**60) or underflow (all |x| < 2**-50) is summed in float64 instead, so
  squares of large values never overflow and sums of tiny ones keep their precision.
* float16 and bfloat16 chunks are widened to float32 (bit-exact) before reducing; float32 and float64 are read
  as they are.
* Integer and bool tensors are read as float64 (bool as 0/1, int64 beyond 2**53 rounds); they hold no NaN/Inf,
  so those counts are 0.
* bfloat16: NumPy has no such dtype, and a dump may hold its raw bits as uint16/int16 or 2-byte void. With
  ``dtype_hint='bfloat16'`` those bits are widened to float32 chunk by chunk and ``dtype`` says 'bfloat16'.
* ``change`` compares with ``previous``: an element is within tolerance when both values are finite and
  ``|cur - prev| <= atol + rtol * |prev|``; any NaN or Inf on either side counts as exceeding.
* ``digest`` hashes the raw bytes in memory order in the same pass: the kernel's 64-bit hash (its digest_upto:
  each 16 KB segment as soon as the reduction's blocks have covered it) or, without the kernel, a CRC-32 (zlib).
  The two differ, so digests are only compared within one process run (weight_frozen), never stored.
"""

from __future__ import annotations

import functools
import math
import os
import zlib
from dataclasses import dataclass, fields
from typing import Iterable, Iterator

import numpy as np

from msdbg.engine.initweights import rows_identical
from msdbg.store.npyfile import NpyLayout, TensorFileError, layout_from_header, release_pages

STAT_NAMES: frozenset[str] = frozenset({
    "nonfinite", "nan", "pos_inf", "neg_inf", "zero", "neg", "pos", "min", "max", "sum", "abs_sum", "sq_sum",
    "finite_count", "range_count", "change", "identical_rows", "digest",
})
#: The summary every recorded tensor gets (min, max, mean, abs-mean, L2 norm, NaN/Inf/zero counts derive from it).
SUMMARY_NEEDS: frozenset[str] = frozenset({"nonfinite", "zero", "min", "max", "sum", "abs_sum", "sq_sum",
                                          "finite_count"})
# The fields of TensorStats each need fills, where they differ from the need's name.
_FIELDS = {"nonfinite": ("nan", "pos_inf", "neg_inf"), "change": ("change_exceed", "change_abs_sum", "prev_abs_sum")}
_COUNTS = ("nan", "pos_inf", "neg_inf", "zero", "neg", "pos", "finite_count", "range_count", "change_exceed")
_SUMS = frozenset({"sum", "abs_sum", "sq_sum"})
_VALUE_STATS = frozenset({"zero", "neg", "pos", "min", "max", "finite_count", "range_count"}) | _SUMS

# 256K elements (1 MB of float32): the overflow check ran at 0.6x of np.add.reduce with 32K chunks, 0.8x with
# 64K, 0.9x with 128K and 1.0x with 256K (fewer calls per byte); full statistics were flat from 64K to 256K
# (benchmarks/stats_throughput.py --chunk, 2-core AMD EPYC, 1 MB L2 per core).
CHUNK_ELEMENTS = 262144
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
    identical_rows: bool | None = None  # every row along axis 0 equals the first (engine/initweights.py)
    digest: int | None = None  # of the raw bytes: equal for equal bytes, within one process run only (see above)

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
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "digest"}  # not a statistic
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
    prev_abs_sum. ``identical_rows`` compares the rows along axis 0 apart from that pass
    (initweights.rows_identical: two rows for a random weight). ``dtype_hint`` is the tensor's dtype as its dump names it ('bfloat16' decodes raw bits).
    """
    needs = frozenset(needs)
    if "identical_rows" in needs:
        stats = compute_stats(array, needs - {"identical_rows"}, value_range=value_range, previous=previous,
                              rtol=rtol, atol=atol, chunk_elements=chunk_elements, dtype_hint=dtype_hint)
        stats.identical_rows = rows_identical(np.asarray(array))
        return stats
    if "digest" in needs and "change" in needs and KERNEL is not None:  # NumPy compares; the kernel hashes
        stats = compute_stats(array, needs - {"digest"}, value_range=value_range, previous=previous, rtol=rtol,
                              atol=atol, chunk_elements=chunk_elements, dtype_hint=dtype_hint)
        stats.digest = compute_stats(array, {"digest"}, chunk_elements=chunk_elements, dtype_hint=dtype_hint).digest
        return stats
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

    if KERNEL is not None and "change" not in needs:
        return _compiled_stats(array, needs, value_range, chunk, dtype_hint)
    sources = [_Source(array, dtype_hint, "current")]
    if "change" in needs:
        sources.append(_Source(np.asarray(previous), dtype_hint, "previous"))
    reducer = _Reducer(needs, sources, value_range, rtol, atol, chunk)
    with np.errstate(all="ignore"):
        for window in _windows([source.storage for source in sources], chunk):
            for chunks in _chunks(window, chunk):
                reducer.add(*chunks)
            for part in window:
                release_pages(part)
    return reducer.result(array.size, sources[0].dtype_name, array.shape)


def _load_kernel():
    """The compiled kernel (msdbg/_statskernel.c), or None when it was not built or MSDBG_NO_CEXT is set."""
    if os.environ.get(NO_CEXT_ENV, "") not in ("", "0"):
        return None
    try:
        from msdbg import _statskernel
    except ImportError:
        return None
    return _statskernel


NO_CEXT_ENV = "MSDBG_NO_CEXT"
KERNEL = _load_kernel()


def _compiled_stats(array: np.ndarray, needs: frozenset[str], value_range: tuple[float, float] | None, chunk: int,
                    dtype_hint: str | None) -> TensorStats:
    """The statistics by the compiled kernel: one call per contiguous window (a small tensor: one call and little
    else), chunks of the rest (views that are not contiguous, non-native byte order) copied by nditer."""
    kind, dtype_name, bits = _kernel_format(array.dtype, (dtype_hint or "").lower())
    storage = array if bits is None else array.view(bits)
    mode, fields = _kernel_request(needs)
    seed = 0 if "digest" in needs else None
    low, high = (float(value_range[0]), float(value_range[1])) if value_range is not None else (-math.inf, math.inf)
    if storage.size <= chunk and storage.dtype.isnative and (storage.flags.c_contiguous or storage.flags.f_contiguous):
        totals = _kernel_totals(KERNEL.reduce(storage.ravel(order="K"), kind, mode, low, high, False, seed),
                                storage.size)
    else:
        if seed is not None:  # pieces on the digest's segment grid chain to the one-call digest
            chunk = -(-chunk // _DIGEST_ELEMENTS) * _DIGEST_ELEMENTS
        totals = _kernel_totals((0,) * 6 + (math.nan,) * 2 + (0.0,) * 3 + (seed,), 0)
        for window in _windows([storage], chunk):
            part = window[0]
            whole = part.dtype.isnative and (part.flags.c_contiguous or part.flags.f_contiguous)
            pieces = [part.ravel(order="K")] if whole else (np.ascontiguousarray(c) for [c] in _chunks(window, chunk))
            if seed is not None and not whole:  # nditer cuts where the layout allows
                pieces = _regrouped(pieces, chunk, part.dtype.newbyteorder("="))
            for piece in pieces:
                if piece.size:
                    _add_totals(totals, _kernel_totals(KERNEL.reduce(piece, kind, mode, low, high, False,
                                                                     totals["digest"]), piece.size))
            release_pages(part)
    return TensorStats(int(array.size), dtype_name, array.shape, **{name: totals[name] for name in fields})


# What file_stats computes in the kernel's one pass over a file (a comparison or rows need more).
_FILE_NEEDS = STAT_NAMES - {"change", "identical_rows"}


def file_stats(files: list[tuple[str, frozenset[str], tuple[float, float] | None, str]]
               ) -> list[tuple[NpyLayout, TensorStats | None] | None]:
    """For each ``.npy`` file (path, needs, value range, dtype hint): its layout and compute_stats's statistics
    ``needs`` of it (None for a file that is not floating point, or when ``needs`` is empty), all read and reduced
    in one call of the compiled kernel with the GIL released. None for a file the caller's own reading must
    handle: no kernel, a file it cannot read or whose header it does not parse, data over 64 MB (read in windows
    there), needs beyond one pass."""
    results: list[tuple[NpyLayout, TensorStats | None] | None] = [None] * len(files)
    if KERNEL is None:
        return results
    asked = [i for i, (_, needs, value_range, _) in enumerate(files)
             if not needs - _FILE_NEEDS and (value_range is not None or "range_count" not in needs)]
    jobs = []
    for i in asked:
        path, needs, value_range, hint = files[i]
        low, high = (float(value_range[0]), float(value_range[1])) if value_range is not None else (-math.inf, math.inf)
        jobs.append((path, _kernel_request(needs)[0] if needs else -1, hint == "bfloat16", "digest" in needs, low, high))
    for i, read in zip(asked, KERNEL.reduce_files(jobs) if jobs else []):
        path, needs, _, hint = files[i]
        if read is None:
            continue
        header, size, kind, count, reduced = read
        try:
            layout = layout_from_header(path, header, size)
        except TensorFileError:
            continue  # the caller's read says what is wrong
        if count != math.prod(layout.shape):  # the kernel read the header otherwise than NumPy: let the caller decide
            continue
        if reduced is None:
            results[i] = (layout, None)
            continue
        format_kind, dtype_name, _ = _kernel_format(layout.dtype, hint)
        if format_kind != kind:
            continue
        totals = _kernel_totals(reduced, count)
        fields = _kernel_request(needs)[1]
        results[i] = (layout, TensorStats(count, dtype_name, layout.shape, **{name: totals[name] for name in fields}))
    return results


@functools.lru_cache(maxsize=None)
def _kernel_format(dtype: np.dtype, hint: str) -> tuple[str, str, type | None]:
    """(the kernel's name for the storage, the dtype reported, the dtype to view raw bfloat16 bits as, or None)."""
    if hint == "bfloat16" and dtype.itemsize == 2 and dtype.kind in "iuV":
        return "B", "bfloat16", np.uint16
    if dtype.kind in "iu":
        return f"{dtype.kind}{dtype.itemsize}", dtype.name, None
    kinds = {"float16": "e", "float32": "f", "float64": "d", "bool": "?"}
    if dtype.name not in kinds:
        _Source(np.empty(0, dtype), hint, "current")  # raises the one message for unsupported dtypes
    return kinds[dtype.name], dtype.name, None


@functools.lru_cache(maxsize=None)
def _kernel_request(needs: frozenset[str]) -> tuple[int, frozenset[str]]:
    """The kernel's mode for these needs (0: NaN/Inf counts only, 1: all but range_count, 2: all) and the fields
    of TensorStats they fill."""
    mode = 2 if "range_count" in needs else 1 if needs & _VALUE_STATS else 0
    return mode, frozenset(name for need in needs for name in _FIELDS.get(need, (need,)))


def _regrouped(pieces: Iterable[np.ndarray], chunk: int, dtype: np.dtype) -> Iterator[np.ndarray]:
    """The pieces' elements in runs of exactly ``chunk`` (the last one shorter), in one reused buffer."""
    run, filled = np.empty(chunk, dtype), 0
    for piece in pieces:
        while piece.size:
            take = min(chunk - filled, piece.size)
            run[filled:filled + take], filled, piece = piece[:take], filled + take, piece[take:]
            if filled == chunk:
                yield run
                filled = 0
    if filled:
        yield run[:filled]


# The kernel hashes segments of 16 KB: chunks of a multiple of 16384 elements, whatever their width, end on one.
_DIGEST_ELEMENTS = 16384


def _kernel_totals(reduced: tuple, size: int) -> dict:
    """The kernel's figures for ``size`` elements as TensorStats fields (min/max None without finite values)."""
    nan, pos_inf, neg_inf, zero, neg, range_count, low, high, total, abs_sum, sq_sum = reduced[:11]  # kernel's order
    finite = size - nan - pos_inf - neg_inf
    if not finite:
        low = high = None
    return {"nan": nan, "pos_inf": pos_inf, "neg_inf": neg_inf, "zero": zero, "neg": neg, "range_count": range_count,
            "min": low, "max": high, "sum": total, "abs_sum": abs_sum, "sq_sum": sq_sum, "finite_count": finite,
            "pos": finite - zero - neg, "digest": reduced[11] if len(reduced) > 11 else None}


def _add_totals(totals: dict, more: dict) -> None:
    for name in _COUNTS[:-1] + ("sum", "abs_sum", "sq_sum"):  # all but change_exceed
        totals[name] += more[name]
    totals["digest"] = more["digest"]  # chained: the last piece's digest covers every piece before it
    if more["min"] is not None:
        totals["min"] = more["min"] if totals["min"] is None else min(totals["min"], more["min"])
        totals["max"] = more["max"] if totals["max"] is None else max(totals["max"], more["max"])


# A memory-mapped tensor is read in windows of this many bytes, each dropped from resident memory once read
# (benchmarks/memory.py: a 1 GiB tensor's check stays ~64 MB above idle instead of +1 GiB of mapped pages).
WINDOW_BYTES = 64 << 20


def _chunks(parts: list[np.ndarray], chunk: int) -> Iterator[list[np.ndarray]]:
    """Matching flat chunks of at most ``chunk`` elements of the operands, in memory order."""
    if _one_chunk(parts, chunk):  # most tensors of a step are small: no iterator to set up
        yield [part.ravel(order="K") for part in parts]
        return
    # nditer hands out views where the storage allows, else copies into its own buffers (non-contiguous or
    # byte-swapped arrays), never the whole array.
    iterator = np.nditer(parts, flags=["external_loop", "buffered", "zerosize_ok"],
                         op_flags=[["readonly"]] * len(parts), buffersize=chunk, order="K",
                         op_dtypes=[part.dtype.newbyteorder("=") for part in parts])
    for chunks in iterator:
        yield [chunks] if len(parts) == 1 else list(chunks)


def _one_chunk(parts: list[np.ndarray], chunk: int) -> bool:
    """Whether the operands fit one chunk and are laid out alike in native byte order (flat views are free)."""
    first = parts[0]
    if not 0 < first.size <= chunk or any(not part.dtype.isnative for part in parts):
        return False
    return _laid_out_alike(parts)


def _laid_out_alike(parts: list[np.ndarray]) -> bool:
    """Whether the operands are all C-contiguous or all Fortran-contiguous (their flat views then match)."""
    return all(part.flags.c_contiguous for part in parts) or all(part.flags.f_contiguous for part in parts)


def _windows(storages: list[np.ndarray], chunk: int) -> Iterator[list[np.ndarray]]:
    """The operands in matching windows of about WINDOW_BYTES, in memory order; whole when they are small or not
    laid out alike (then nditer's buffering handles them at once)."""
    first = storages[0]
    if first.nbytes <= WINDOW_BYTES or not _laid_out_alike(storages):
        yield storages
        return
    flat = [s.ravel(order="K") for s in storages]
    step = max(chunk, WINDOW_BYTES // first.itemsize // chunk * chunk)
    for start in range(0, first.size, step):
        yield [f[start:start + step] for f in flat]


_FLOATS = ("float16", "float32", "float64")
# Exponent bits of the 2-byte float formats: all ones means Inf or NaN.
_EXPONENT16 = {"float16": 0x7C00, "bfloat16": 0x7F80}
_TWO_POW_112 = np.float32(2.0**112)


class _Source:
    """One operand: the raw storage nditer walks, and how a chunk of it becomes float32/float64 values."""

    def __init__(self, array: np.ndarray, dtype_hint: str | None, name: str):
        dtype, self.name = array.dtype, name
        self.storage, self.dtype_name, self.format = array, dtype.name, dtype.name
        if (dtype_hint or "").lower() == "bfloat16" and dtype.itemsize == 2 and dtype.kind in "iuV":
            self.storage, self.dtype_name, self.format = array.view(np.uint16), "bfloat16", "bfloat16"
        elif dtype.kind in "biu":
            self.format = None
        elif dtype.name not in _FLOATS:
            raise ValueError(f"cannot compute statistics of dtype {dtype}: float16/32/64, integer and bool tensors "
                             "are supported, and bfloat16 stored as 2-byte raw bits with dtype_hint='bfloat16'")
        self.is_float = self.format is not None
        self.native = self.format in ("float32", "float64")  # chunks are float values as they are

    def has_nonfinite(self, chunk: np.ndarray) -> bool:
        """Whether a chunk of 2-byte floats holds Inf or NaN (all exponent bits set), read off the raw bits with no
        conversion: the largest element with the sign bit clear shows as int16, the largest with it set as uint16."""
        exponent = _EXPONENT16[self.format]
        return bool(np.maximum.reduce(chunk.view(np.int16)) >= exponent
                    or np.maximum.reduce(chunk.view(np.uint16)) >= 0x8000 | exponent)

    def decode(self, chunk: np.ndarray, reducer: _Reducer) -> np.ndarray:
        """The chunk as float values: float32 for 2-byte floats, float64 for integers and bool."""
        if self.native:
            return chunk
        if not self.is_float:
            values = reducer.buffer(self.name, len(chunk), np.float64)
            values[...] = chunk
            return values
        bits = reducer.buffer(self.name, len(chunk), np.uint32)
        if self.format == "bfloat16":  # the upper half of a float32
            return np.left_shift(chunk, 16, out=bits, dtype=np.uint32).view(np.float32)
        if self.has_nonfinite(chunk):  # NumPy's exact conversion, a slow scalar loop: only for chunks with NaN/Inf
            values = bits.view(np.float32)
            values[...] = chunk
            return values
        return _half_to_float32(chunk.view(np.uint16), bits, reducer.buffer(self.name + " sign", len(chunk), np.uint32))


def _half_to_float32(half: np.ndarray, out: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """Finite float16 bits as float32, about 3x faster than NumPy's float16 cast.

    Exponent and mantissa shifted into float32 position read as exactly 2**-112 times the value (subnormals
    too); multiplying by 2**112 rescales it exactly, then the sign bit goes back on. NaN/Inf would come out
    finite, so this is only for chunks without them.
    """
    np.copyto(out, half)
    np.left_shift(np.bitwise_and(out, 0x8000, out=sign), 16, out=sign)
    np.left_shift(np.bitwise_and(out, 0x7FFF, out=out), 13, out=out)
    values = out.view(np.float32)
    np.multiply(values, _TWO_POW_112, out=values)
    np.bitwise_or(out, sign, out=out)
    return values


class _Reducer:
    """Running totals over the chunks."""

    def __init__(self, needs: frozenset[str], sources: list[_Source], value_range: tuple[float, float] | None,
                 rtol: float, atol: float, chunk: int):
        self.needs, self.sources, self.chunk = needs, sources, chunk
        self.fields = {name for need in needs for name in _FIELDS.get(need, (need,))}
        self.value_stats = needs & _VALUE_STATS
        self.minmax = bool(needs & {"min", "max"})
        if value_range is not None:  # compared in float64, however narrow the values
            self.low, self.high = np.float64(value_range[0]), np.float64(value_range[1])
        self.rtol, self.atol = rtol, atol
        self.totals: dict[str, float | None] = dict.fromkeys(_COUNTS, 0)
        self.totals.update(dict.fromkeys(("sum", "abs_sum", "sq_sum", "change_abs_sum", "prev_abs_sum"), 0.0))
        self.totals["min"] = self.totals["max"] = None
        self.totals["digest"] = 0
        self.probes = bool(needs - {"digest"})
        self._buffers: dict[str, np.ndarray] = {}

    def buffer(self, name: str, length: int, dtype: type) -> np.ndarray:
        """A scratch array of ``length`` elements, allocated once per compute_stats call, not per chunk."""
        buffer = self._buffers.get(name)
        if buffer is None or len(buffer) < length:
            buffer = self._buffers[name] = np.empty(max(length, self.chunk), dtype)
        return buffer[:length]

    def add(self, current: np.ndarray, previous: np.ndarray | None = None) -> None:
        """One chunk of raw storage (and the same chunk of the previous value, for 'change')."""
        source, low, high, finite = self.sources[0], None, None, True
        if "digest" in self.needs:  # chunks come in memory order: the CRC chains over them as over one buffer
            self.totals["digest"] = zlib.crc32(np.ascontiguousarray(current), self.totals["digest"])
        if not self.probes:
            return
        # Probe the chunk for NaN/Inf by the fastest exact test measured (benchmarks/stats_throughput.py).
        if source.native and self.minmax:  # needed anyway: NaN propagates, and an Inf is the min or max
            low, high = np.minimum.reduce(current), np.maximum.reduce(current)
            finite = math.isfinite(low) and math.isfinite(high)
        elif source.native:
            # One BLAS pass, faster than min+max or the bit test: squares are >= 0, so any NaN/Inf makes the sum
            # NaN/Inf. A finite chunk can only fail by overflow (|x| > 1e19 in float32); _split_nonfinite then
            # counts no NaN/Inf in it, so the result stays exact.
            finite = math.isfinite(_dot(current, current))
        elif source.is_float:  # 2-byte floats: no conversion
            finite = not source.has_nonfinite(current)
        if finite and not self.value_stats and previous is None:
            return  # the overflow check's fast path: nothing to convert, nothing to count
        values = source.decode(current, self)
        if previous is not None:
            self._add_change(values, self.sources[1].decode(previous, self))
        if not finite:
            values, low, high = self._split_nonfinite(values), None, None
        if self.value_stats and len(values):
            self._add_finite(values, low, high)

    def _split_nonfinite(self, values: np.ndarray) -> np.ndarray:
        """Count NaN/+Inf/-Inf and return the finite values (the slow path, for chunks that hold any)."""
        finite = np.isfinite(values, out=self.buffer("finite", len(values), bool))
        nonfinite = len(values) - np.count_nonzero(finite)
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
        # The chunk's min and max, when known, settle the sign counts of one-signed chunks (ReLU outputs, ...).
        if needs & {"zero", "pos"}:
            one_signed = low is not None and (low > 0 or high < 0)
            zero = 0 if one_signed else np.count_nonzero(np.equal(values, 0, out=mask))
            totals["zero"] += zero
        if needs & {"neg", "pos"}:
            if low is not None and (low >= 0 or high < 0):
                neg = 0 if low >= 0 else count
            else:
                neg = np.count_nonzero(np.less(values, 0, out=mask))
            totals["neg"] += neg
        if "pos" in needs:
            totals["pos"] += count - zero - neg
        if "range_count" in needs:
            inside = np.greater_equal(values, self.low, out=mask)
            inside &= np.less_equal(values, self.high, out=self.buffer("mask2", count, bool))
            totals["range_count"] += np.count_nonzero(inside)
        if needs & _SUMS:
            self._add_sums(values, low, high)

    def _add_sums(self, values: np.ndarray, low: float | None, high: float | None) -> None:
        """sum / abs_sum / sq_sum of finite values: float32 through BLAS when its range allows, else float64."""
        totals, needs = self.totals, self.needs
        if values.dtype == np.float32 and _float32_safe(values, low, high):
            if "sum" in needs:
                totals["sum"] += _sum(values)
            if "sq_sum" in needs:
                totals["sq_sum"] += _dot(values, values)
            if "abs_sum" in needs:
                totals["abs_sum"] += _sum(np.abs(values, out=self.buffer("abs32", len(values), np.float32)))
            return
        wide = values
        if values.dtype != np.float64:
            wide = self.buffer("wide", len(values), np.float64)
            wide[...] = values
        if "sum" in needs:
            totals["sum"] += float(np.add.reduce(wide))
        if "sq_sum" in needs:
            totals["sq_sum"] += _dot(wide, wide)
        if "abs_sum" in needs:  # last: in place when wide is our own copy
            out = self.buffer("abs", len(wide), np.float64) if wide is values else wide
            totals["abs_sum"] += float(np.add.reduce(np.abs(wide, out=out)))

    def _add_change(self, current: np.ndarray, previous: np.ndarray) -> None:
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


def _float32_safe(values: np.ndarray, low: float | None, high: float | None) -> bool:
    """Whether float32 sums of these finite values cannot overflow and their squares keep their precision:
    the largest magnitude lies in [2**-50, 2**60] (or every value is 0)."""
    if low is None:
        low, high = np.minimum.reduce(values), np.maximum.reduce(values)
    largest = max(-float(low), float(high))
    return largest == 0.0 or _FLOAT32_SUM_RANGE[0] <= largest <= _FLOAT32_SUM_RANGE[1]


_FLOAT32_SUM_RANGE = (2.0**-50, 2.0**60)


def _sum(x: np.ndarray) -> float:
    """Sum of a float32 array: BLAS dot products with ones on rows of _ROW elements, rows added in float64.
    About 2x faster than NumPy's float32 pairwise sum on cached data (measured). Not ``rows @ ones``: OpenBLAS
    threads a matrix-vector product above 9216 elements, which made whole passes 10-20x slower (measured)."""
    split = len(x) - len(x) % _ROW
    rows = np.add.reduce(np.vecdot(x[:split].reshape(-1, _ROW), _ONES32), dtype=np.float64) if split else 0.0
    return float(rows + np.add.reduce(x[split:], dtype=np.float64))


_ONES32 = np.ones(_ROW, np.float32)


def _dot(x: np.ndarray, y: np.ndarray) -> float:
    """x . y through single-threaded BLAS calls on rows of _ROW elements (see _ROW), rows added in float64."""
    split = len(x) - len(x) % _ROW
    rows = (np.add.reduce(np.vecdot(x[:split].reshape(-1, _ROW), y[:split].reshape(-1, _ROW)), dtype=np.float64)
            if split else 0.0)
    return float(rows + np.dot(x[split:].astype(np.float64), y[split:]))
