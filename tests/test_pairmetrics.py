"""Pair metrics against a plain NumPy reference, across chunk and window boundaries and memory-mapped files."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from msdbg.engine import pairmetrics
from msdbg.engine.pairmetrics import Tolerance, compare_arrays
from msdbg.errors import UsageError
from msdbg.store.npyfile import open_npy


def _reference(a, b, tolerance):
    """The metrics computed the obvious way, in float64 over the positions finite on both sides."""
    x, y = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    both = np.isfinite(x) & np.isfinite(y)
    same = (x == y) | (np.isnan(x) & np.isnan(y))
    xs, ys = x[both], y[both]
    d = np.abs(xs - ys)
    denominator = np.maximum(np.abs(xs), np.abs(ys))
    rel = np.where(denominator > 0, d / np.where(denominator > 0, denominator, 1), 0)
    norm = np.sqrt(np.dot(xs, xs) * np.dot(ys, ys))
    cosine = 1.0 if not xs.any() and not ys.any() else (np.dot(xs, ys) / norm if norm else 0.0)
    within = bool(np.all(d <= tolerance.atol + tolerance.rtol * np.abs(xs))) and bool(np.all(both | same))
    return d.max(initial=0), rel.max(initial=0), cosine, within, int(np.count_nonzero(~both & ~same))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(1, 300), seed=st.integers(0, 2**16), nan_at=st.lists(st.integers(0, 299), max_size=3),
       dtype_b=st.sampled_from(["float32", "float16", "float64"]), scale=st.sampled_from([0.0, 1e-6, 1e-3, 1.0]))
def test_metrics_match_numpy(monkeypatch, size, seed, nan_at, dtype_b, scale):
    monkeypatch.setattr(pairmetrics, "CHUNK", 7)  # many chunks, ragged last one (same values for every example)
    monkeypatch.setattr(pairmetrics, "WINDOW_ELEMENTS", 21)
    rng = np.random.default_rng(seed)
    a = rng.normal(size=size).astype(np.float32)
    b = (a + scale * rng.normal(size=size)).astype(dtype_b)
    for at in nan_at:
        if at < size:
            (a if at % 2 else b)[at] = np.nan if at % 3 else np.inf
    tolerance = Tolerance(1e-4, 1e-6)
    got = compare_arrays(a, b, tolerance)
    max_abs, max_rel, cosine, within, mismatch = _reference(a, b, tolerance)
    if got.max_abs is None:
        assert not (np.isfinite(a) & np.isfinite(b)).any()
    else:
        assert got.max_abs == pytest.approx(max_abs, rel=1e-6, abs=1e-12)
        assert got.max_rel == pytest.approx(max_rel, rel=1e-5, abs=1e-12)
        assert got.cosine == pytest.approx(cosine, rel=1e-6, abs=1e-9)
    assert got.within == within and got.nonfinite_mismatch == mismatch


def test_shapes_that_differ_in_size_diverge_and_equal_sizes_compare_flat():
    got = compare_arrays(np.zeros((2, 3), np.float32), np.zeros(5, np.float32), Tolerance())
    assert not got.within and "shapes differ" in got.problem and got.max_abs is None
    assert compare_arrays(np.ones((2, 3), np.float32), np.ones(6, np.float32), Tolerance()).within


def test_cosine_tolerance_and_zero_tensors():
    a = np.array([1.0, 0.0], np.float32)
    assert compare_arrays(a, np.array([1.0, 0.1], np.float32), Tolerance(cosine_lt=0.99)).within
    assert not compare_arrays(a, np.array([0.0, 1.0], np.float32), Tolerance(cosine_lt=0.99)).within
    zeros = np.zeros(4, np.float32)
    assert compare_arrays(zeros, zeros, Tolerance()).cosine == 1.0
    assert compare_arrays(zeros, np.ones(4, np.float32), Tolerance()).cosine == 0.0


def test_memory_mapped_files_across_windows(tmp_path, monkeypatch):
    monkeypatch.setattr(pairmetrics, "WINDOW_ELEMENTS", 1 << 16)
    rng = np.random.default_rng(1)
    a = rng.normal(size=(700, 1000)).astype(np.float32)
    b = a.copy()
    b[699, 999] += 0.5
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    mapped_a, mapped_b = open_npy(str(tmp_path / "a.npy")), open_npy(str(tmp_path / "b.npy"))
    assert isinstance(mapped_a, np.memmap)
    got = compare_arrays(mapped_a, mapped_b, Tolerance())
    assert got.max_abs == pytest.approx(0.5, rel=1e-6) and got.out_of_tolerance == 1 and not got.within


def test_fortran_order_compares_by_index():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert compare_arrays(a, np.asfortranarray(a), Tolerance()).max_abs == 0


def test_tolerance_options():
    assert Tolerance.from_options(None, None, None) == Tolerance()
    assert Tolerance.from_options(1e-3, None, None) == Tolerance(1e-3, Tolerance.atol)
    assert Tolerance.from_options(None, None, 0.99).cosine_lt == 0.99
    for bad in [(1.0, None, 0.9), (-1.0, None, None), (None, float("nan"), None), (None, None, 1.5)]:
        with pytest.raises(UsageError):
            Tolerance.from_options(*bad)
