"""compute_stats against a plain full-array NumPy reference, on crafted arrays and on hypothesis-drawn ones."""

from __future__ import annotations

import json
import os
import math
import tracemalloc

import numpy as np
import pytest
from conftest import SCRIPTS, plain_mindspore_dump
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from msdbg.engine import stats as stats_module
from msdbg.engine.stats import NO_CEXT_ENV, STAT_NAMES, SUMMARY_NEEDS, TensorStats, compute_stats

VALUE_NEEDS = STAT_NAMES - {"change"}
COUNTS = ("nan", "pos_inf", "neg_inf", "zero", "neg", "pos", "finite_count", "range_count")


@pytest.fixture(autouse=True, params=["compiled", "numpy"])
def stats_path(request, monkeypatch):
    """Every test runs on both paths: the compiled kernel (skipped where it was not built) and the NumPy fallback."""
    if request.param == "compiled" and request.node.get_closest_marker("change_only"):
        pytest.skip("'change' statistics are computed by NumPy on both paths")
    if request.param == "compiled" and stats_module.KERNEL is None:
        pytest.skip("the compiled statistics kernel is not built here (no C compiler, or MSDBG_NO_CEXT set)")
    if request.param == "numpy":
        monkeypatch.setattr(stats_module, "KERNEL", None)
    return request.param


def assert_same_stats(got: dict, expected: dict) -> None:
    """Same statistics: numbers within rounding, everything else (shape, dtype, flags) exactly."""
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            assert got[name] == pytest.approx(value), name
        else:
            assert got[name] == value, name


def bfloat16_bits(values) -> np.ndarray:
    """float32 values (exactly representable in bfloat16) as raw bfloat16 bits."""
    return (np.asarray(values, np.float32).view(np.uint32) >> 16).astype(np.uint16)


def as_float64(array: np.ndarray, dtype_hint: str | None = None) -> np.ndarray:
    if dtype_hint == "bfloat16":
        return (array.view(np.uint16).astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    return np.asarray(array, dtype=np.float64)


def reference(array, value_range=(-1.0, 1.0), previous=None, rtol=1e-5, atol=1e-8, dtype_hint=None) -> dict:
    """The statistics by plain NumPy over the whole array at once, with masks."""
    x = as_float64(array, dtype_hint).ravel()
    finite = x[np.isfinite(x)]
    low, high = value_range
    ref = {
        "nan": int(np.isnan(x).sum()), "pos_inf": int((x == np.inf).sum()), "neg_inf": int((x == -np.inf).sum()),
        "zero": int((x == 0).sum()), "neg": int((finite < 0).sum()), "pos": int((finite > 0).sum()),
        "min": float(finite.min()) if finite.size else None, "max": float(finite.max()) if finite.size else None,
        "sum": float(finite.sum()), "abs_sum": float(np.abs(finite).sum()), "sq_sum": float((finite * finite).sum()),
        "finite_count": int(finite.size), "range_count": int(((finite >= low) & (finite <= high)).sum()),
    }
    if previous is not None:
        p = as_float64(previous, dtype_hint).ravel()
        both = np.isfinite(x) & np.isfinite(p)
        with np.errstate(invalid="ignore"):
            diff = np.abs(x - p)
            within = both & (diff <= atol + rtol * np.abs(p))
        ref.update(change_exceed=int(x.size - within.sum()), change_abs_sum=float(diff[both].sum()),
                   prev_abs_sum=float(np.abs(p[np.isfinite(p)]).sum()))
    return ref


def close(got: float, want: float, scale: float) -> bool:
    """float64 sums agree to 1e-6 relative, or to 1e-9 of the sum of magnitudes where terms cancel."""
    return math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9 * abs(scale))


def check(stats: TensorStats, ref: dict) -> None:
    for name in COUNTS + ("change_exceed",):
        if name in ref and getattr(stats, name) is not None:
            assert getattr(stats, name) == ref[name], name
            assert type(getattr(stats, name)) is int, name
    for name in ("min", "max"):
        if getattr(stats, name) is not None or ref[name] is None:
            assert getattr(stats, name) == ref[name], name
    scales = {"sum": ref["abs_sum"], "abs_sum": ref["abs_sum"], "sq_sum": ref["sq_sum"],
              "change_abs_sum": ref.get("change_abs_sum"), "prev_abs_sum": ref.get("prev_abs_sum")}
    for name, scale in scales.items():
        if getattr(stats, name) is not None:
            assert close(getattr(stats, name), ref[name], scale), (name, getattr(stats, name), ref[name])


def full(array, chunk_elements=None, **kwargs) -> TensorStats:
    return compute_stats(array, VALUE_NEEDS, value_range=(-1.0, 1.0), chunk_elements=chunk_elements, **kwargs)


# --- argument checks -------------------------------------------------------------------------------------------

def test_unknown_need_names_the_accepted_ones():
    with pytest.raises(ValueError, match="unknown statistics.*'median'.*accepted: .*nonfinite.*sq_sum"):
        compute_stats(np.zeros(3), {"median", "sum"})


def test_change_needs_previous_of_same_shape():
    with pytest.raises(ValueError, match="'change' needs previous.*got none"):
        compute_stats(np.zeros(3), {"change"})
    with pytest.raises(ValueError, match=r"shape \(3,\).*got shape \(4,\)"):
        compute_stats(np.zeros(3), {"change"}, previous=np.zeros(4))


def test_range_count_needs_value_range():
    with pytest.raises(ValueError, match="value_range"):
        compute_stats(np.zeros(3), {"range_count"})


def test_unsupported_dtype():
    with pytest.raises(ValueError, match="cannot compute statistics of dtype complex128"):
        compute_stats(np.zeros(3, complex), {"sum"})
    with pytest.raises(ValueError, match="dtype_hint='bfloat16'"):
        compute_stats(np.zeros(3, "V2"), {"sum"})


# --- crafted arrays --------------------------------------------------------------------------------------------

def test_empty_array():
    stats = full(np.zeros((0, 3), np.float32))
    assert (stats.size, stats.shape, stats.dtype) == (0, (0, 3), "float32")
    assert all(getattr(stats, name) == 0 for name in COUNTS)
    assert stats.min is None and stats.max is None
    assert (stats.sum, stats.abs_sum, stats.sq_sum) == (0.0, 0.0, 0.0)
    assert stats.mean is None and stats.has_nonfinite is False


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int32, np.bool_])
def test_scalar_0d(dtype):
    value = np.array(1 if dtype is np.bool_ else -3, dtype)
    stats = full(value)
    assert stats.size == 1 and stats.shape == ()
    check(stats, reference(value))
    assert stats.mean == float(value)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_nan_inf_and_negative_zero(dtype):
    array = np.array([1.5, -2.0, 0.0, -0.0, np.nan, np.inf, -np.inf, np.nan, 0.5, -0.0], dtype)
    stats = full(array)
    check(stats, reference(array))
    assert (stats.nan, stats.pos_inf, stats.neg_inf) == (2, 1, 1)
    assert (stats.zero, stats.neg, stats.pos) == (3, 1, 2)  # -0.0 is zero; -Inf is not neg, +Inf not pos
    assert (stats.min, stats.max, stats.sum, stats.finite_count) == (-2.0, 1.5, 0.0, 6)
    assert stats.nonfinite_count == 4 and stats.has_nonfinite is True
    assert stats.zero + stats.neg + stats.pos + stats.nonfinite_count == stats.size


def test_all_nonfinite_has_no_min_max():
    stats = full(np.array([np.nan, np.inf, -np.inf], np.float32))
    assert stats.min is None and stats.max is None and stats.finite_count == 0
    assert stats.sum == 0.0 and stats.mean is None and stats.l2norm == 0.0


def test_float16_extremes():
    tiny = np.float16(2.0**-24)  # smallest subnormal
    array = np.array([65504, -65504, tiny, -tiny, 2.0**-14, 6.1e-5, 0.0, 1.0] * 100, np.float16)
    stats = full(array, chunk_elements=64)
    check(stats, reference(array))
    assert (stats.min, stats.max) == (-65504.0, 65504.0)
    wide = array.astype(np.float64)
    assert stats.sq_sum == pytest.approx(float((wide * wide).sum()), rel=1e-12)  # a float16 square overflows
    assert stats.sum == pytest.approx(float(wide.sum()), rel=1e-12)


def test_every_float16_bit_pattern():
    """Exercises both float16 decodings: chunks with NaN/Inf and chunks without."""
    array = np.arange(2**16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    for chunk in (1000, 2**16):
        stats = full(array, chunk_elements=chunk)
        check(stats, reference(array))
        assert stats.nan == 2 * 1023 and stats.pos_inf == stats.neg_inf == 1


def test_huge_float32_squares_accumulate_in_float64():
    array = np.full(1000, 3e38, np.float32)
    array[::2] *= -1
    stats = full(array, chunk_elements=300)
    check(stats, reference(array))
    assert math.isfinite(stats.sq_sum) and stats.l2norm == pytest.approx(3e38 * math.sqrt(1000), rel=1e-6)
    # The overflow check's sum of squares overflows on these finite values: still no NaN/Inf reported.
    only = compute_stats(array, {"nonfinite"}, chunk_elements=300)
    assert (only.nan, only.pos_inf, only.neg_inf, only.has_nonfinite) == (0, 0, 0, False)


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint8, np.uint64])
def test_integers(dtype):
    info = np.iinfo(dtype)
    array = np.array([0, 1, info.max, info.min, 7, 0, 2], dtype)
    stats = full(array, chunk_elements=3)
    check(stats, reference(array))
    assert stats.dtype == np.dtype(dtype).name
    assert (stats.nan, stats.pos_inf, stats.neg_inf) == (0, 0, 0)
    assert (stats.min, stats.max) == (float(info.min), float(info.max))


def test_bool():
    array = np.array([True, False, True, True])
    stats = full(array)
    check(stats, reference(array))
    assert (stats.dtype, stats.sum, stats.zero, stats.pos, stats.max) == ("bool", 3.0, 1, 3, 1.0)


def test_non_contiguous_views():
    base = np.random.default_rng(1).standard_normal((40, 30)).astype(np.float32)
    base[3, 4], base[20, 0] = np.nan, -np.inf
    for view in (base[::3], base.T, base[:, ::2], base[::-1, 5:25:3], np.asfortranarray(base)):
        check(full(view, chunk_elements=7), reference(view))
        assert full(view).sum == pytest.approx(full(np.ascontiguousarray(view)).sum, rel=1e-12)


@pytest.mark.parametrize("dtype", [">f2", ">f4", ">f8", ">i4"])
def test_big_endian(dtype):
    array = np.array([1, -2, 0, 65504, 7, 3, 3] if "i" in dtype else [1, -2, 0, 65504, np.inf, np.nan, -0.0], dtype)
    check(full(array, chunk_elements=3), reference(array))


@pytest.mark.parametrize("storage", ["uint16", "int16", "V2"])
def test_bfloat16_raw_bits(storage):
    values = [1.0, -2.5, 0.0, -0.0, np.inf, -np.inf, np.nan, 3.3895314e38, 2.0**-133]
    bits = bfloat16_bits(values).view(storage)
    stats = full(bits, dtype_hint="bfloat16", chunk_elements=4)
    assert stats.dtype == "bfloat16"
    check(stats, reference(bits, dtype_hint="bfloat16"))
    assert (stats.nan, stats.pos_inf, stats.neg_inf, stats.zero) == (1, 1, 1, 2)
    assert stats.max == float(np.float32(3.3895314e38)) and math.isfinite(stats.sq_sum)


def test_bfloat16_hint_is_case_insensitive_and_ignored_for_float_storage():
    bits = bfloat16_bits([1.0, 2.0])
    assert compute_stats(bits, {"sum"}, dtype_hint="BFloat16").sum == 3.0
    assert compute_stats(bits, {"sum"}).dtype == "uint16"  # no hint: plain integers
    widened = compute_stats(np.array([1.0, 2.0], np.float32), {"sum"}, dtype_hint="bfloat16")
    assert (widened.dtype, widened.sum) == ("float32", 3.0)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_overflow_check_alone(dtype):
    for values, counts in (([1, -np.inf], (0, 0, 1)), ([np.inf, -2], (0, 1, 0)), ([-np.nan, 0], (1, 0, 0)),
                           ([-1, 65504], (0, 0, 0))):
        stats = compute_stats(np.array(values, dtype), {"nonfinite"})
        assert (stats.nan, stats.pos_inf, stats.neg_inf) == counts, values
    bits = bfloat16_bits([1.0, -np.inf, -3e38])
    assert compute_stats(bits, {"nonfinite"}, dtype_hint="bfloat16").neg_inf == 1


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_nan_only_in_last_chunk(dtype):
    array = np.ones(10_500, dtype)
    array[-1] = np.nan
    only = compute_stats(array, {"nonfinite"}, chunk_elements=1000)
    assert (only.nan, only.pos_inf, only.neg_inf, only.nonfinite_count) == (1, 0, 0, 1)
    assert only.sum is None and only.min is None
    check(full(array, chunk_elements=1000), reference(array))


@pytest.mark.change_only
def test_change_against_previous():
    rng = np.random.default_rng(2)
    previous = rng.standard_normal(5000).astype(np.float32)
    current = previous.copy()
    current[::7] += 0.5
    current[10], previous[11], current[12], previous[12] = np.nan, np.inf, np.inf, np.inf
    stats = compute_stats(current, {"change", "nonfinite"}, previous=previous, chunk_elements=999)
    check(stats, reference(current, previous=previous))
    assert stats.nan == 1 and stats.pos_inf == 1  # counted on the current value only
    assert compute_stats(previous, {"change"}, previous=previous).change_exceed == 2  # Inf is never within


@pytest.mark.change_only
def test_change_tolerance_boundary():
    # atol + rtol * |prev| = 0.25 + 0.5 * 1.0 = 0.75 exactly: a change of exactly 0.75 is within
    previous = np.ones(4, np.float32)
    current = np.array([1.75, 0.25, np.nextafter(np.float32(1.75), np.float32(2)),
                        np.nextafter(np.float32(0.25), np.float32(0))], np.float32)
    stats = compute_stats(current, {"change"}, previous=previous, rtol=0.5, atol=0.25)
    assert stats.change_exceed == 2
    check(stats, reference(current, previous=previous, rtol=0.5, atol=0.25))


def test_range_count():
    array = np.array([-np.inf, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, np.inf, np.nan], np.float32)
    count = lambda low, high: compute_stats(array, {"range_count"}, value_range=(low, high)).range_count
    assert count(-1.0, 1.0) == 5  # both ends included
    assert count(-np.inf, np.inf) == 6  # finite elements only
    assert count(0.1, 0.5) == 1
    assert count(0.1, 0.4) == 0
    # bounds are compared in float64: float32(0.1) is above 0.1, so 0.1 the float64 bound leaves it inside
    assert compute_stats(np.float32([0.1]), {"range_count"}, value_range=(0.1, 1)).range_count == 1
    assert compute_stats(np.float32([0.1]), {"range_count"}, value_range=(0, 0.1)).range_count == 0


def test_only_requested_fields_are_filled():
    stats = compute_stats(np.arange(5.0), {"nonfinite"})
    assert (stats.nan, stats.pos_inf, stats.neg_inf) == (0, 0, 0)
    assert all(getattr(stats, name) is None for name in ("zero", "min", "sum", "finite_count", "change_exceed"))
    assert stats.mean is None and stats.l2norm is None
    partial = compute_stats(np.arange(5.0), {"nan"})
    assert partial.nan == 0 and partial.nonfinite_count is None and partial.has_nonfinite is None


def test_as_dict_is_json_friendly():
    stats = full(np.array([1e308, 1e308, np.nan, -2.0]))
    data = stats.as_dict()
    assert data["sum"] == "inf" and data["sq_sum"] == "inf" and data["l2norm"] == "inf"
    assert data["shape"] == [4] and data["nan"] == 1 and data["has_nonfinite"] is True
    assert data["min"] == -2.0 and type(data["min"]) is float and type(data["zero"]) is int
    assert "change_exceed" not in data and "mean" in data and "abs_mean" in data
    json.loads(json.dumps(data, allow_nan=False))


def test_memmap_input_without_full_size_temporaries(tmp_path):
    array = np.random.default_rng(3).standard_normal(2**22).astype(np.float32)  # 16 MB
    array[[5, 2**21, -1]] = [np.nan, np.inf, -np.inf]
    np.save(tmp_path / "t.npy", array)
    mapped = np.load(tmp_path / "t.npy", mmap_mode="r")
    previous = np.load(tmp_path / "t.npy", mmap_mode="r")
    tracemalloc.start()
    try:
        stats = compute_stats(mapped, STAT_NAMES, value_range=(-1, 1), previous=previous, chunk_elements=2**16)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20, f"peak {peak} bytes for a {array.nbytes} byte array"
    check(stats, reference(array, previous=array))
    assert stats.change_exceed == 3 and stats.change_abs_sum == 0.0


# --- properties ------------------------------------------------------------------------------------------------

def float_arrays(dtype, max_side=12):
    width, bound = {np.float16: (16, None), np.float32: (32, None), np.float64: (64, 1e150)}[dtype]
    finite = st.floats(width=width, min_value=-bound if bound else None, max_value=bound, allow_nan=False,
                       allow_infinity=False)
    elements = st.one_of(finite, st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0]))
    return arrays(dtype, array_shapes(min_dims=0, max_dims=3, max_side=max_side), elements=elements)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@settings(max_examples=75, deadline=None)  # per path: 150 in all
@given(data=st.data(), chunk=st.integers(1, 64))
def test_matches_reference(dtype, data, chunk):
    array = data.draw(float_arrays(dtype))
    if data.draw(st.booleans()) and array.ndim:
        array = array[..., ::2]
    value_range = tuple(sorted(data.draw(st.tuples(st.floats(-10, 10), st.floats(-10, 10)))))
    stats = compute_stats(array, VALUE_NEEDS, value_range=value_range, chunk_elements=chunk)
    check(stats, reference(array, value_range=value_range))
    assert stats.zero + stats.neg + stats.pos + stats.nonfinite_count == stats.size == array.size


@pytest.mark.change_only
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@settings(max_examples=100, deadline=None)
@given(data=st.data(), chunk=st.integers(1, 64), rtol=st.sampled_from([0.0, 1e-5, 0.5]),
       atol=st.sampled_from([0.0, 1e-8, 0.25]))
def test_change_matches_reference(dtype, data, chunk, rtol, atol):
    current = data.draw(float_arrays(dtype))
    noise = data.draw(arrays(dtype, current.shape, elements=st.sampled_from([0.0, 0.25, -0.5, 1.0, np.nan])))
    previous = current + noise
    stats = compute_stats(current, {"change", "nonfinite"}, previous=previous, rtol=rtol, atol=atol,
                          chunk_elements=chunk)
    check(stats, reference(current, previous=previous, rtol=rtol, atol=atol))


@pytest.mark.parametrize("scale", [1e-12, 1.0, 1e15])
def test_float32_sums_through_blas_rows_stay_within_documented_error(scale):
    """Chunks of >= _ROW float32 elements are summed by BLAS in float32 rows: error < 1e-5 of the magnitudes."""
    rng = np.random.default_rng(7)
    array = (rng.standard_normal(300_000) * rng.choice([1e-3, 1.0, 1e3], 300_000) * scale).astype(np.float32)
    array[::5] = 0.0
    stats = full(array, chunk_elements=100_000)
    wide = array.astype(np.float64)
    abs_total = float(np.abs(wide).sum())
    assert abs(stats.sum - float(wide.sum())) <= 1e-5 * abs_total
    assert stats.abs_sum == pytest.approx(abs_total, rel=1e-5)
    assert stats.sq_sum == pytest.approx(float((wide * wide).sum()), rel=1e-5)
    assert (stats.zero, stats.neg + stats.pos) == (60_000, 240_000)


@pytest.mark.parametrize("value", [3e-30, 2e25])
def test_float32_chunks_outside_the_safe_range_are_summed_in_float64(value):
    """Squares of tiny float32 values underflow and of huge ones overflow: such chunks take the float64 route."""
    array = np.full(50_000, value, np.float32)
    array[1::2] *= -1
    stats = full(array, chunk_elements=20_000)
    wide = array.astype(np.float64)
    assert stats.sq_sum == pytest.approx(float((wide * wide).sum()), rel=1e-12)
    assert stats.abs_sum == pytest.approx(float(np.abs(wide).sum()), rel=1e-12)
    assert stats.sum == 0.0


def _mapped_rss_kb(path: str) -> int:
    """Resident kB of this process's mappings of ``path`` (from /proc/self/smaps)."""
    total, inside = 0, False
    with open("/proc/self/smaps", encoding="utf-8") as smaps:
        for line in smaps:
            fields_ = line.split()
            if "-" in fields_[0] and len(fields_) >= 5:
                inside = fields_[-1] == path
            elif inside and fields_[0] == "Rss:":
                total += int(fields_[1])
    return total


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="needs Linux /proc")
def test_memory_mapped_tensor_is_read_in_windows_and_released(tmp_path, monkeypatch):
    from msdbg.engine import stats as stats_module
    from msdbg.store.npyfile import open_npy

    rng = np.random.default_rng(3)
    current, previous = (rng.standard_normal(4_000_000).astype(np.float32) for _ in range(2))
    current[123_456] = np.nan
    for name, values in (("cur.npy", current), ("prev.npy", previous)):
        np.save(tmp_path / name, values)
    needs = set(STAT_NAMES) - {"range_count"}
    whole = compute_stats(current, needs, previous=previous)
    monkeypatch.setattr(stats_module, "WINDOW_BYTES", 1 << 20)  # 16 windows of 1 MiB
    mapped, mapped_previous = open_npy(str(tmp_path / "cur.npy")), open_npy(str(tmp_path / "prev.npy"))
    windowed = compute_stats(mapped, needs, previous=mapped_previous)
    assert_same_stats(windowed.as_dict(), whole.as_dict())
    assert windowed.nan == 1
    assert _mapped_rss_kb(str(tmp_path / "cur.npy")) <= 2048  # of a 15.6 MB file: pages were given back
    assert float(mapped[123_457]) == float(current[123_457])  # and read back unchanged after release


@pytest.mark.parametrize("values", [[0.0, 0.0, 2.0, 3.0], [1.0, 2.0], [-1.0, -2.0], [-3.0, 0.0, -0.0], [0.0, -0.0]])
def test_sign_counts_of_one_signed_chunks(values):
    """Chunks whose min/max settle the sign counts (ReLU outputs, all-negative) skip comparisons: same counts."""
    array = np.array(values * 50_000, np.float32)
    stats = full(array, chunk_elements=30_000)
    check(stats, reference(array))


# --- the compiled kernel and the NumPy fallback agree ----------------------------------------------------------

def both_paths(array, needs=VALUE_NEEDS, **kwargs) -> tuple[TensorStats, TensorStats]:
    compiled = compute_stats(array, needs, **kwargs)
    kernel, stats_module.KERNEL = stats_module.KERNEL, None
    try:
        return compiled, compute_stats(array, needs, **kwargs)
    finally:
        stats_module.KERNEL = kernel


def assert_paths_agree(compiled: TensorStats, fallback: TensorStats) -> None:
    """Counts, min, max, size, dtype and shape exactly; the sums asked for within the documented error (1e-5 of the
    sum of magnitudes, of squares for sq_sum)."""
    for name in COUNTS + ("min", "max", "size", "dtype", "shape"):
        assert getattr(compiled, name) == getattr(fallback, name), name
    for name in ("sum", "abs_sum", "sq_sum"):
        if getattr(fallback, name) is not None:
            scale = fallback.sq_sum if name == "sq_sum" else fallback.abs_sum
            assert abs(getattr(compiled, name) - getattr(fallback, name)) <= 1e-5 * scale, name


def assert_loops_agree(buffer: np.ndarray, kind: str, mode: int, low: float, high: float) -> None:
    """The kernel's loop for this CPU and its portable loop (forced): the same counts, min and max; sums within the
    documented error."""
    wide, portable = (stats_module.KERNEL.reduce(buffer, kind, mode, low, high, force) for force in (False, True))
    assert wide[:6] == portable[:6]
    assert np.array_equal(wide[6:8], portable[6:8], equal_nan=True)
    for got, want, scale in zip(wide[8:], portable[8:], (portable[9], portable[9], portable[10])):
        assert abs(got - want) <= 1e-5 * scale


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "bfloat16", "int16", "uint8", "bool"])
def test_compiled_and_numpy_paths_agree(dtype, stats_path):
    """Counts, min and max exactly, sums within the documented error (1e-5 of the sum of magnitudes), on tensors
    large enough for the kernel's fast float32 sums, with NaN/Inf in some of its blocks only."""
    if stats_path == "numpy":
        pytest.skip("compares the compiled path with the fallback")
    rng = np.random.default_rng(11)
    wide = rng.standard_normal(70_001) * rng.choice([1e-3, 1.0, 30.0], 70_001)
    wide[::9] = 0.0
    hint = None
    if dtype in ("float16", "float32", "float64"):
        wide[[3, 40_000, 40_001, 69_999]] = [np.nan, np.inf, -np.inf, np.nan]
        array = wide.astype(dtype)
    elif dtype == "bfloat16":
        wide[[3, 40_000, 40_001]] = [np.nan, np.inf, -np.inf]
        array, hint = bfloat16_bits(wide.astype(np.float32)), "bfloat16"
    else:
        array = (wide * 40).astype(dtype) if dtype != "bool" else wide > 0
    assert_paths_agree(*both_paths(array, value_range=(-0.5, 2.0), dtype_hint=hint))
    only_compiled, only_fallback = both_paths(array, {"nonfinite"}, dtype_hint=hint)
    assert only_compiled == only_fallback


def test_environment_variable_forces_the_numpy_fallback(stats_path):
    if stats_path == "compiled":
        pytest.skip("one run is enough")
    import subprocess
    import sys

    probe = "from msdbg.engine import stats; print(stats.KERNEL is None)"
    env = dict(os.environ, **{NO_CEXT_ENV: "1"})
    forced = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert forced.stdout.strip() == "True"


# (the bits of +Inf, a bound for random magnitudes): bfloat16 stays mostly below 2**60, where the kernel's float32
# sums hold, so that its fast loops run (a block with a larger value takes the float64 route).
TWO_BYTE_LIMITS = {"float16": (0x7C00, 0x7C00), "bfloat16": (0x7F80, 0x5D80)}


def random_2byte_bits(rng: np.random.Generator, size: int, infinity: int, largest: int) -> np.ndarray:
    """Raw 2-byte float bits: half of any magnitude below the bits ``largest`` (subnormals included), half near 1,
    a tenth ±0, one value just below ``infinity`` (block 2), NaN/±Inf in a few blocks of 1024 only (on block edges
    and in the last, partial 16 values)."""
    magnitudes = rng.integers(0, largest, size, dtype=np.uint16)
    near_one = rng.integers(infinity // 2 - 2048, infinity // 2 + 1024, size, dtype=np.uint16)
    bits = np.where(rng.random(size) < 0.5, magnitudes, near_one).astype(np.uint16)
    bits[rng.random(size) < 0.1] = 0
    bits |= rng.integers(0, 2, size, dtype=np.uint16) << 15
    edges = ((2100, infinity - 1), (1023, infinity + 1), (1024, infinity), (5 * 1024 + 17, 0x8000 | infinity),
             (-2, 0xFFFF))
    for position, value in edges:
        bits[position] = value
    return bits


@pytest.mark.parametrize("size, start, chunk", [(8_205, 0, None), (70_001, 1, None), (70_001, 3, 10_000),
                                                (200_003, 7, 65_536), (9_000, 0, 8_192)])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_2byte_floats_compiled_and_numpy_agree(dtype, size, start, chunk, stats_path):
    """The kernel's 2-byte loops (the AVX2 + F16C one where the CPU has it) against the NumPy fallback on random
    bits with NaN/Inf/-0/subnormals: odd lengths, starts off any vector boundary, windows split into chunks."""
    if stats_path == "numpy":
        pytest.skip("compares the compiled path with the fallback")
    rng = np.random.default_rng(size + start)
    bits = random_2byte_bits(rng, size + start, *TWO_BYTE_LIMITS[dtype])[start:]
    array, hint = (bits.view(np.float16), None) if dtype == "float16" else (bits, "bfloat16")
    for needs in (VALUE_NEEDS, SUMMARY_NEEDS, {"nonfinite"}):
        compiled, fallback = both_paths(array, needs, value_range=(-0.75, 3.0), chunk_elements=chunk, dtype_hint=hint)
        assert_paths_agree(compiled, fallback)
    assert compiled.nan + compiled.pos_inf + compiled.neg_inf >= 1


def test_float16_at_an_odd_byte_address_agrees_with_the_aligned_copy(stats_path):
    """A float16 tensor whose data starts at an odd address (possible in a memory-mapped file): same statistics."""
    rng = np.random.default_rng(21)
    values = random_2byte_bits(rng, 50_001, *TWO_BYTE_LIMITS["float16"]).view(np.float16)
    shifted = np.frombuffer(b"\0" + values.tobytes(), np.float16, offset=1)
    assert shifted.ctypes.data % 2 == 1
    assert full(shifted).as_dict() == full(values.copy()).as_dict()


@pytest.mark.parametrize("mode", [0, 1, 2])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_portable_2byte_loop_gives_the_same_statistics(dtype, mode, stats_path):
    """reduce(..., portable=True) forces the portable loop: same counts, min and max, sums within the documented
    error, as the loop this CPU runs (the AVX2 + F16C one: skipped on CPUs without it, which run only the other)."""
    if stats_path == "numpy" or not stats_module.KERNEL.WIDE_2BYTE:
        pytest.skip("needs the compiled kernel's AVX2 + F16C loop")
    rng = np.random.default_rng(mode)
    bits = random_2byte_bits(rng, 100_013, *TWO_BYTE_LIMITS[dtype])
    kind = "e" if dtype == "float16" else "B"
    for start, stop in ((0, None), (1, 100_000), (5, 9_000), (3 * 1024, 6 * 1024 + 11)):
        assert_loops_agree(bits[start:stop], kind, mode, -0.75, 3.0)


@pytest.mark.slow
def test_float16_tensors_of_a_real_o2_training_agree_on_every_path(tmp_path, stats_path):
    """MindSpore's own dump of an O2 mixed-precision training (float16 activations and gradients): the kernel's
    loop for this CPU, its portable loop and the NumPy fallback give the same statistics for every float16 tensor
    large enough for the kernel's fast loops."""
    if stats_path == "numpy":
        pytest.skip("compares the compiled path with the fallback")
    from msdbg.store.npyfile import open_npy

    dump = plain_mindspore_dump(SCRIPTS / "amp_o2.py", tmp_path / "dump", "jit")
    tensors = [open_npy(str(path)) for path in sorted(dump.rglob("*.npy"))]
    halves = [array for array in tensors if array.dtype == np.float16 and array.size >= 8192]
    assert len(halves) >= 20
    for array in halves:
        assert_paths_agree(*both_paths(array, value_range=(-0.01, 0.01)))
        assert_loops_agree(np.ascontiguousarray(array).ravel(), "e", 2, -0.01, 0.01)


# ----- digest of the raw bytes (weight_frozen) -------------------------------------------------------------------

# Every dtype width (1, 2, 4, 8 bytes), with a size whose bytes end in a tail shorter than a stripe and a segment.
DIGEST_DTYPES = ["uint8", "bool", "int16", "float16", "bfloat16", "float32", "int32", "float64", "int64"]


def _digest_array(dtype: str, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype == "bfloat16":
        return rng.integers(0, 1 << 16, size, dtype=np.uint16)
    raw = rng.integers(0, 256, size * np.dtype(dtype).itemsize, dtype=np.uint8)
    array = raw.view(dtype) if dtype != "bool" else raw.astype(bool)
    return array.copy()


def _digest(array: np.ndarray, dtype: str, **kwargs) -> int:
    return compute_stats(array, {"digest"}, dtype_hint=dtype, **kwargs).digest


@pytest.mark.parametrize("dtype", DIGEST_DTYPES)
def test_digest_is_the_same_across_chunkings_calls_and_requests(dtype):
    """One call, chunks of any size, a second call, a memory-order copy, and a pass that also computes full
    statistics (the kernel hashes inside its reduction loops, which differ by request) give one digest."""
    array = _digest_array(dtype, 70001)
    digest = _digest(array, dtype)
    assert isinstance(digest, int)
    assert _digest(array, dtype) == digest
    for chunk in (1, 7, 1000, 1024, 4096, 65537):
        assert _digest(array, dtype, chunk_elements=chunk) == digest, chunk
    with_stats = compute_stats(array, SUMMARY_NEEDS | {"digest", "range_count"}, value_range=(-1.0, 1.0),
                               dtype_hint=dtype)
    assert with_stats.digest == digest
    assert compute_stats(array, {"nonfinite", "digest"}, dtype_hint=dtype).digest == digest
    assert _digest(array.copy(), dtype) == digest
    assert compute_stats(array, {"nonfinite"}, dtype_hint=dtype).digest is None, "only when asked"
    if dtype not in ("bfloat16", "bool"):  # 'change' goes through NumPy on both paths: the digest stays the same
        assert compute_stats(array, {"change", "digest"}, previous=array, dtype_hint=dtype).digest == digest
    assert "digest" not in with_stats.as_dict(), "not a statistic to show or store"


@pytest.mark.parametrize("dtype", ["uint8", "float16", "float32", "float64"])
@pytest.mark.parametrize("size", [1, 5, 63, 64, 65, 1023, 1024, 1025, 4096 + 37])
def test_digest_differs_for_a_one_bit_change_anywhere(dtype, size):
    """Flipping one bit changes the digest: at the start, the middle, and each of the last bytes (the tail that
    fills no whole stripe), every bit position of some byte."""
    array = _digest_array(dtype, size, seed=size)
    digest = _digest(array, dtype)
    raw = array.view(np.uint8)
    positions = {0, raw.size // 2, *range(max(0, raw.size - 9), raw.size)}
    for position in sorted(positions):
        for bit in range(8) if position in (0, raw.size - 1) else (position % 8,):
            changed = raw.copy()
            changed[position] ^= 1 << bit
            assert _digest(changed.view(dtype), dtype) != digest, (position, bit)


def test_digest_tells_lengths_and_zero_bytes_apart():
    """Zero padding of the tail does not make a buffer equal to a longer one with trailing zero bytes."""
    digests = {_digest(np.zeros(n, np.uint8), "uint8") for n in range(0, 130)}
    assert len(digests) == 130


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_digest_covers_blocks_with_nan_and_inf(dtype):
    """Blocks holding NaN/Inf take the element-by-element path: still hashed, and a different NaN payload is a
    different tensor."""
    array = np.random.default_rng(1).normal(size=50000).astype(dtype)
    array[[3, 20000, 49999]] = [np.nan, np.inf, -np.inf]
    digest = _digest(array, dtype)
    for chunk in (1000, 8192):
        assert _digest(array, dtype, chunk_elements=chunk) == digest
    for needs in (SUMMARY_NEEDS, {"nonfinite"}):
        assert compute_stats(array, needs | {"digest"}).digest == digest
    changed = array.copy()
    changed.view(f"u{array.itemsize}")[3] ^= 1  # another NaN
    assert np.isnan(changed[3]) and _digest(changed, dtype) != digest


def test_digest_of_views_memmaps_and_byte_order(tmp_path):
    """A non-contiguous view hashes as its contiguous copy, a memory-mapped file as the array it holds, a
    big-endian array as its values in native byte order (read through NumPy's buffered iterator)."""
    array = _digest_array("float32", 300 * 257).view(np.float32).reshape(300, 257)
    view = array[:, ::2]
    assert _digest(view, "float32") == _digest(np.ascontiguousarray(view), "float32")
    assert _digest(view, "float32", chunk_elements=333) == _digest(np.ascontiguousarray(view), "float32")
    path = tmp_path / "w.npy"
    np.save(path, array)
    assert _digest(np.load(path, mmap_mode="r"), "float32") == _digest(array, "float32")
    assert _digest(array.astype(">f4"), "float32") == _digest(array, "float32")
    assert _digest(np.zeros(0, np.float32), "float32") == _digest(np.zeros(0, np.float32), "float32")


@pytest.mark.parametrize("kind, dtype", [("u1", "uint8"), ("e", "float16"), ("f", "float32"), ("d", "float64"),
                                         ("i8", "int64")])
def test_kernel_digest_chains_from_its_seed_and_agrees_with_its_portable_loop(kind, dtype, stats_path):
    """Pieces of a multiple of 16 KB, each seeded with the last digest, give the one-call digest in every
    mode; the AVX2 segment loop and the portable one (forced) agree."""
    if stats_path == "numpy":
        pytest.skip("the kernel's own API")
    buffer = _digest_array(dtype, 5 * 16384 + 11, seed=5)
    whole = {stats_module.KERNEL.reduce(buffer, kind, mode, -1.0, 1.0, portable, 0)[11]
             for mode in (0, 1, 2) for portable in (False, True)}
    assert len(whole) == 1
    cut = 32768 // buffer.itemsize  # two segments
    digest = 0
    for start in range(0, buffer.size, cut):
        digest = stats_module.KERNEL.reduce(buffer[start:start + cut], kind, 0, 0.0, 0.0, False, digest)[11]
    assert whole == {digest}
    assert stats_module.KERNEL.reduce(buffer, kind, 0, 0.0, 0.0, False, 1)[11] != digest, "the seed counts"
    assert len(stats_module.KERNEL.reduce(buffer, kind, 0, 0.0, 0.0)) == 11, "no digest unless seeded"
