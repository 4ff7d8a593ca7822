"""msdbg.repl.render: arrays, stats tables, histograms, diffs and index parsing as text."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msdbg.repl import render
from msdbg.repl.render import diff_summary, format_array, histogram, parse_slice, stats_table

RED, RESET = "\x1b[1;31m", "\x1b[0m"


@pytest.fixture
def small_chunks(monkeypatch):
    """Make chunked passes cut even tiny arrays into many pieces."""
    monkeypatch.setattr(render, "_CHUNK", 7)


def _memmap(tmp_path, array: np.ndarray) -> np.ndarray:
    np.save(tmp_path / "a.npy", array)
    return np.load(tmp_path / "a.npy", mmap_mode="r")


def _with_nonfinite() -> np.ndarray:
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    a[1, 2], a[2, 0], a[2, 3] = np.nan, np.inf, -np.inf
    return a


def _bin_counts(text: str) -> list[int]:
    return [int(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("[")]


# format_array

def test_format_array_header_and_values():
    text = format_array(np.arange(6, dtype=np.int16).reshape(2, 3))
    assert text.splitlines() == ["shape=(2, 3) dtype=int16", "[[0 1 2]", " [3 4 5]]"]


def test_nonfinite_plain_has_no_ansi_and_counts_line():
    text = format_array(_with_nonfinite())
    assert "\x1b" not in text
    assert text.splitlines()[1] == "nan: 1  +inf: 1  -inf: 1 (first at index (1, 2))"
    assert "nan" in text.splitlines()[3] and "-inf" in text.splitlines()[4]


def test_nonfinite_highlighted_with_color():
    text = format_array(_with_nonfinite(), color=True)
    body = "\n".join(text.splitlines()[2:])
    assert f"{RED}nan{RESET}" in body and f"{RED}inf{RESET}" in body and f"{RED}-inf{RESET}" in body
    assert re.sub(r"\x1b\[[0-9;]*m", "", text) == format_array(_with_nonfinite())
    assert f"{RED}nan" not in format_array(np.array([0.5, 1.0]), color=True)


def test_no_counts_line_when_all_finite():
    assert len(format_array(np.ones(3)).splitlines()) == 2


def test_full_prints_everything_and_summary_shows_edges():
    a = np.arange(50)
    summary = format_array(a, max_elements=10)
    assert "..." in summary and " 0 " in summary and "49" in summary and " 25 " not in summary
    full = format_array(a, max_elements=10, full=True)
    assert "..." not in full and all(str(i) in full for i in range(50))
    assert "..." not in format_array(np.arange(2000), max_elements=5000)


def test_large_memmap_summary_is_short(tmp_path):
    a = np.zeros((2000, 2000), dtype=np.float32)
    a[1234, 567] = np.nan
    a[1500, 3] = -np.inf
    m = _memmap(tmp_path, a)
    for array in (m, m.T, m[:, ::3]):
        text = format_array(array, color=True)
        assert len(text) < 2000 and "..." in text
    assert "nan: 1  +inf: 0  -inf: 1 (first at index (1234, 567))" in format_array(m)
    assert "(first at index (3, 1500))" in format_array(m.T)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from([0.0, -1.5, 2.0, np.nan, np.inf, -np.inf]), min_size=1, max_size=60),
       st.sampled_from([np.float16, np.float32, np.float64]), st.booleans())
def test_chunked_census_matches_numpy(values, dtype, transpose):
    render._CHUNK, saved = 5, render._CHUNK
    try:
        a = np.array(values, dtype=dtype)
        a = np.stack([a, a[::-1]], axis=1 if transpose else 0)
        census = render._census(a)
    finally:
        render._CHUNK = saved
    flat = a.reshape(-1)
    assert (census.nan, census.pos_inf, census.neg_inf) == (np.isnan(a).sum(), (a == np.inf).sum(),
                                                            (a == -np.inf).sum())
    bad = np.flatnonzero(~np.isfinite(flat))
    assert census.first_bad == (bad[0] if bad.size else None)


# stats_table

def test_stats_table_order_alignment_and_digits():
    stats = {"zeta": 1, "nan": 0, "mean": 0.123456789, "dtype": "float32", "alpha": 2.5, "size": 12,
             "shape": (3, 4), "min": -1e-9, "neg_inf": 0}
    lines = stats_table(stats).splitlines()
    assert [line.split()[0] for line in lines] == ["size", "shape", "dtype", "min", "mean", "nan", "neg_inf",
                                                   "alpha", "zeta"]
    assert {line.index(line.split(maxsplit=1)[1]) for line in lines} == {len("neg_inf") + 2}
    assert "mean     0.123457" in lines and "min      -1e-09" in lines and "shape    (3, 4)" in lines


def test_stats_table_highlights_nonzero_nonfinite_counts_only_with_color():
    stats = {"nan": 3, "pos_inf": 0, "neg_inf": 1, "max": 2.0}
    assert "\x1b" not in stats_table(stats)
    colored = stats_table(stats, color=True)
    assert f"{RED}3{RESET}" in colored and f"{RED}1{RESET}" in colored and f"{RED}0" not in colored


# histogram

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bins", [1, 7, 20])
def test_histogram_matches_numpy(dtype, bins, small_chunks):
    rng = np.random.default_rng(bins)
    a = rng.normal(size=(30, 11)).astype(dtype)
    a[3, 4], a[5, 5], a[7, 1] = np.nan, np.inf, -np.inf
    text = histogram(a, bins=bins)
    finite = a[np.isfinite(a)].astype(np.float64)
    assert _bin_counts(text) == np.histogram(finite, bins=bins)[0].tolist()
    assert sum(_bin_counts(text)) == finite.size
    assert text.splitlines()[-1] == "excluded nan: 1  +inf: 1  -inf: 1"
    assert len(text.splitlines()) == bins + 1


def test_histogram_on_transposed_memmap(tmp_path, small_chunks):
    a = np.random.default_rng(0).uniform(-3, 3, size=(40, 9))
    m = _memmap(tmp_path, a).T
    assert _bin_counts(histogram(m, bins=9)) == np.histogram(a, bins=9)[0].tolist()


def test_histogram_bars_and_labels():
    text = histogram(np.array([0.0, 1.0, 1.0, 1.0, 3.0, 4.0]), bins=4, width=30)
    first, second = text.splitlines()[:2]
    assert first.startswith("[0.00, 1.00) ") and first.endswith(" 1") and first.count("█") == 10
    assert second.count("█") == 30 and second.endswith(" 3")
    assert text.splitlines()[-1].startswith("[3.00, 4.00] ")
    assert "█" not in histogram(np.arange(5.0), ascii_only=True) and "#" in histogram(np.arange(5.0), ascii_only=True)


def test_histogram_edge_cases():
    assert histogram(np.array([], dtype=np.float32)) == "empty array"
    assert histogram(np.full(4, np.nan)) == "no finite values\nexcluded nan: 4  +inf: 0  -inf: 0"
    constant = histogram(np.array([2.5, 2.5, np.nan]))
    assert len(constant.splitlines()) == 2 and _bin_counts(constant) == [2]
    assert _bin_counts(histogram(np.array([True, False, True]))) == [1, 2]
    ints = np.array([1, 2, 2, 3, 7], dtype=np.int8)
    assert _bin_counts(histogram(ints)) == np.histogram(ints, bins=7)[0].tolist()


def test_histogram_color_only_when_asked():
    a = np.array([1.0, np.nan])
    assert "\x1b" not in histogram(a) and RED in histogram(a, color=True)


# diff_summary

def _diff_lines(a, b, **kwargs) -> dict[str, str]:
    text = diff_summary(a, b, label_a="old", label_b="new", **kwargs)
    return dict(line.split(": ", 1) for line in text.splitlines()[1:])


def test_diff_summary_matches_numpy(tmp_path, small_chunks):
    rng = np.random.default_rng(1)
    a = rng.normal(size=(6, 10)).astype(np.float32)
    b = a.copy()
    b[::3] += rng.normal(size=(2, 10)).astype(np.float32)
    b[4, 6] += 10
    lines = _diff_lines(_memmap(tmp_path, a), b)
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    differing = np.count_nonzero(a != b)
    assert lines["differing elements"] == f"{differing} of 60 ({100 * differing / 60:.3g}%)"
    assert lines["max abs diff"].startswith(f"{d.max():.6g} at index (4, 6): old={a[4, 6]:.6g} new={b[4, 6]:.6g}")
    assert float(lines["mean abs diff"]) == pytest.approx(d.mean(), rel=1e-5)
    relative = float(lines["relative change"].split()[0])
    assert relative == pytest.approx(d.mean() / np.abs(a.astype(np.float64)).mean(), rel=1e-5)


def test_diff_summary_nan_aware():
    a = np.array([1.0, np.nan, np.inf, 2.0, 5.0])
    b = np.array([1.0, np.nan, np.inf, np.nan, 4.0])
    lines = _diff_lines(a, b)
    assert lines["differing elements"] == "2 of 5 (40%)"
    assert lines["max abs diff"] == "1 at index (4,): old=5 new=4"
    assert lines["mean abs diff"] == "0.5"
    assert lines["differing with NaN/Inf"].startswith("1 ")


def test_diff_summary_identical_shapes_and_colour():
    a = np.arange(4, dtype=np.int32)
    lines = _diff_lines(a, a.copy())
    assert lines["differing elements"] == "0 of 4 (0%)" and lines["max abs diff"] == "0"
    ints = _diff_lines(np.array([100], np.int8), np.array([-100], np.int8))
    assert ints["max abs diff"].startswith("200 ")
    assert RED in diff_summary(a, a + 1, label_a="x", label_b="y", color=True)
    assert "\x1b" not in diff_summary(a, a + 1, label_a="x", label_b="y")


def test_diff_summary_shape_mismatch():
    text = diff_summary(np.zeros((2, 3)), np.zeros(6), label_a="step 1", label_b="step 2")
    assert text == "step 1 and step 2 differ in shape: (2, 3) vs (6,)"


# parse_slice

ARR = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
EXPRESSIONS = ["0", "-1", ":3", "1:", "::2", "::-1", "1, 2:5", "..., -1", "0, ..., 1:3", "1,", ":, :, 0",
               "-2:, ::-2, 1", "0, 1, 2, 3", " 1 , 2 ", "...", "1:2:", "::", ":,::3,...", "+1", "5:1:-1",
               "0,0,0,0,", "10:20", "-100:100"]


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_parse_slice_matches_numpy(text):
    assert np.array_equal(ARR[parse_slice(text)], eval(f"ARR[{text}]"))
    assert ARR[parse_slice(f"[{text}]")].shape == eval(f"ARR[{text}]").shape


_INDEX_PART = st.one_of(
    st.integers(-2, 1).map(str),
    st.tuples(*[st.one_of(st.none(), st.integers(-6, 6))] * 2, st.sampled_from([None, -2, -1, 1, 2, 3])).map(
        lambda t: ":".join("" if v is None else str(v) for v in t[:2]) + ("" if t[2] is None else f":{t[2]}")))


@settings(max_examples=150, deadline=None)
@given(st.lists(_INDEX_PART, min_size=1, max_size=4), st.integers(0, 4), st.booleans())
def test_parse_slice_property(parts, ellipsis_at, use_ellipsis):
    if use_ellipsis:
        parts = parts[:ellipsis_at] + ["..."] + parts[ellipsis_at:]
    text = ", ".join(parts)
    try:
        expected = eval(f"ARR[{text}]")
    except IndexError:
        with pytest.raises(IndexError):
            ARR[parse_slice(text)]
        return
    assert np.array_equal(ARR[parse_slice(text)], expected)


@pytest.mark.parametrize("text, message", [
    ("a:3", "bad index 'a:3' in [a:3]: expected integers"),
    ("1, 2.5", "bad index '2.5' in [1, 2.5]: expected integers"),
    ("0, x", "bad index 'x' in [0, x]: expected integers"),
    ("1:2:3:4", "bad index '1:2:3:4' in [1:2:3:4]: too many ':'"),
    ("1,,2", "bad index '' in [1,,2]: empty index"),
    ("", "bad index '' in []: empty index"),
    ("..., ...", "bad index in [..., ...]: only one '...' allowed"),
    ("::0", "bad index '::0' in [::0]: slice step cannot be zero"),
    ("None", "bad index 'None' in [None]: expected integers"),
    ("1 2", "bad index '1 2' in [1 2]: expected integers"),
])
def test_parse_slice_errors(text, message):
    with pytest.raises(ValueError) as info:
        parse_slice(text)
    assert str(info.value) == message
