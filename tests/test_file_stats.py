"""stats.file_stats: the compiled kernel reads and reduces a step's .npy files in one call. Its statistics and
layouts equal compute_stats on the loaded array and read_header (bit for bit: the same kernel over the same
buffer), and any file it cannot handle comes back None, for the caller's own reading to decide."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from msdbg.engine import stats as stats_module
from msdbg.engine.stats import SUMMARY_NEEDS, compute_stats, file_stats
from msdbg.store.npyfile import open_npy, read_header

pytestmark = pytest.mark.skipif(stats_module.KERNEL is None, reason="the compiled statistics kernel is not built here")

PLAIN = SUMMARY_NEEDS | {"neg", "pos"}
RANGED = PLAIN | {"range_count"}
DIGEST = frozenset({"nonfinite", "digest"})


def _expected(path: str, needs: frozenset[str], value_range=None, hint: str = "") -> tuple:
    array = open_npy(path)
    return read_header(path), compute_stats(array, needs, value_range=value_range, dtype_hint=hint or None)


def _same(got, expected) -> None:
    layout, stats = got
    want_layout, want_stats = expected
    assert layout == want_layout
    assert stats.as_dict() == want_stats.as_dict()  # NaN min/max compare as None in as_dict


def _save(tmp_path, name: str, array: np.ndarray, fortran: bool = False) -> str:
    path = str(tmp_path / name)
    np.save(path, np.asfortranarray(array) if fortran else array)
    return path


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("size", [0, 1, 7, 8191, 8192, 70_001, 300_000])  # under and over the fast-sum and 1 MB marks
def test_statistics_equal_compute_stats_on_the_loaded_file(tmp_path, dtype, size):
    rng = np.random.default_rng(size)
    values = (rng.standard_normal(size) * 3).astype(dtype)
    if size > 10:
        values[::97] = 0
        values[5] = np.nan
        values[-3] = -np.inf
    path = _save(tmp_path, "t.npy", values)
    for needs, value_range in ((PLAIN, None), (RANGED, (-0.5, 2.0)), (DIGEST, None), (frozenset({"nonfinite"}), None)):
        got, = file_stats([(path, needs, value_range, dtype)])
        _same(got, _expected(path, needs, value_range))


def test_shapes_fortran_order_and_a_float16_name_over_float32_bytes(tmp_path):
    rng = np.random.default_rng(3)
    matrix = rng.standard_normal((33, 17)).astype(np.float32)
    fortran = _save(tmp_path, "f.npy", matrix, fortran=True)
    scalar = _save(tmp_path, "s.npy", np.array(2.5, np.float32))
    # MindSpore's CPU O2 dump: a float16 header over float32 values (npyfile.read_header)
    o2 = str(tmp_path / "o2.npy")
    header = np.lib.format.header_data_from_array_1_0(np.zeros((4, 5), np.float16))
    with open(o2, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        handle.write(rng.standard_normal(20).astype(np.float32).tobytes())
    for path in (fortran, scalar, o2):
        got, = file_stats([(path, PLAIN, None, "float16" if path == o2 else "float32")])
        assert got[1].dtype == "float32"
        _same(got, _expected(path, PLAIN))


def test_bfloat16_bits_are_decoded_when_the_name_says_bfloat16(tmp_path):
    bits = (np.array([1.5, -2.0, 0.0, 3.0e5], np.float32).view(np.uint32) >> 16).astype(np.uint16)
    path = _save(tmp_path, "b.npy", bits)
    got, = file_stats([(path, PLAIN, None, "bfloat16")])
    assert got[1].dtype == "bfloat16" and (got[1].min, got[1].max) == (-2.0, 299008.0)
    _same(got, _expected(path, PLAIN, hint="bfloat16"))
    as_integers, = file_stats([(path, PLAIN, None, "uint16")])
    assert as_integers[1] is None  # integers: the header is read, no statistics made


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint8", "bool"])
def test_integer_and_bool_files_give_their_layout_only(tmp_path, dtype):
    path = _save(tmp_path, "i.npy", np.arange(12).reshape(3, 4).astype(dtype))
    got, = file_stats([(path, PLAIN, None, dtype)])
    assert got == (read_header(path), None)


def test_no_needs_reads_the_header_only(tmp_path):
    path = _save(tmp_path, "t.npy", np.ones(5, np.float32))
    assert file_stats([(path, frozenset(), None, "float32")]) == [(read_header(path), None)]


def test_files_it_cannot_handle_come_back_none_and_the_others_still_count(tmp_path):
    good = _save(tmp_path, "good.npy", np.arange(6, dtype=np.float32))
    truncated = str(tmp_path / "truncated.npy")
    with open(good, "rb") as source, open(truncated, "wb") as target:
        target.write(source.read()[:-4])
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"\x93NUMPY\x01\x00\x10\x00{'descr': 'xx'}")
    big_endian = _save(tmp_path, "be.npy", np.arange(4, dtype=">f4"))
    fifo = str(tmp_path / "fifo.npy")
    os.mkfifo(fifo)
    folder = tmp_path / "folder.npy"
    folder.mkdir()
    files = [truncated, str(garbage), big_endian, fifo, str(folder), str(tmp_path / "missing.npy"), good]
    got = file_stats([(path, PLAIN, None, "float32") for path in files])
    assert got[:-1] == [None] * 6
    _same(got[-1], _expected(good, PLAIN))


def test_needs_beyond_one_pass_are_left_to_the_caller(tmp_path):
    path = _save(tmp_path, "t.npy", np.ones((3, 3), np.float32))
    assert file_stats([(path, PLAIN | {"identical_rows"}, None, "float32"),
                       (path, frozenset({"range_count"}), None, "float32")]) == [None, None]


def test_without_the_kernel_every_file_is_left_to_the_caller(tmp_path, monkeypatch):
    path = _save(tmp_path, "t.npy", np.ones(3, np.float32))
    monkeypatch.setattr(stats_module, "KERNEL", None)
    assert file_stats([(path, PLAIN, None, "float32")]) == [None]


def test_the_digest_equals_compute_stats_digest_and_tells_a_changed_file(tmp_path):
    values = np.random.default_rng(1).standard_normal(50_000).astype(np.float32)
    first = _save(tmp_path, "a.npy", values)
    values[12_345] = np.nextafter(values[12_345], np.float32(9))
    second = _save(tmp_path, "b.npy", values)
    (_, a), (_, b) = file_stats([(first, DIGEST, None, "float32"), (second, DIGEST, None, "float32")])
    assert a.digest == compute_stats(open_npy(first), DIGEST).digest
    assert a.digest != b.digest


@settings(max_examples=60, deadline=None)
@given(array=arrays(st.sampled_from([np.float16, np.float32, np.float64]), array_shapes(min_dims=0, max_dims=3, max_side=40),
                    elements=st.floats(allow_nan=True, allow_infinity=True, width=16)),
       fortran=st.booleans(), low=st.floats(-2, 2), width=st.floats(0, 4))
def test_drawn_tensors_agree_with_compute_stats(tmp_path_factory, array, fortran, low, width):
    path = _save(tmp_path_factory.mktemp("drawn"), "t.npy", array, fortran=fortran and array.ndim > 1)
    got, = file_stats([(path, RANGED, (low, low + width), array.dtype.name)])
    _same(got, _expected(path, RANGED, (low, low + width)))


def _check_against_numpy(path: str) -> None:
    """file_stats on one file: None, or the layout read_header gives and compute_stats's statistics."""
    got, = file_stats([(path, PLAIN, None, "float32")])
    if got is None:
        return
    assert got[0] == read_header(path)
    if got[1] is not None:
        _same(got, _expected(path, PLAIN))
    else:
        assert got[0].dtype.kind not in "f"


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=300), cut=st.integers(0, 200))
def test_arbitrary_bytes_never_raise(tmp_path_factory, data, cut):
    """Whatever a file holds, file_stats gives what NumPy's reading gives, or None."""
    prefix = np.lib.format.magic(1, 0) + len(data).to_bytes(2, "little")
    folder = tmp_path_factory.mktemp("bytes")
    for name, content in (("raw.npy", data), ("framed.npy", (prefix + data)[:cut] if cut else prefix + data)):
        path = str(folder / name)
        with open(path, "wb") as handle:
            handle.write(content)
        _check_against_numpy(path)


_DESCRS = ["<f4", "<f2", "<f8", "|b1", "<i4", "|u1", ">f4", "<c8", "|V2", "<f4'", "f4", "<U3", "|O"]


@settings(max_examples=200, deadline=None)
@given(descr=st.sampled_from(_DESCRS), fortran=st.sampled_from(["False", "True", "0", "None"]),
       dims=st.lists(st.one_of(st.integers(0, 9), st.sampled_from(["-1", "", " ", "x", "99999999999999999999"])),
                     max_size=3),
       order=st.permutations(["descr", "fortran", "shape"]), payload=st.integers(0, 400), spaces=st.booleans())
def test_drawn_headers_never_raise(tmp_path_factory, descr, fortran, dims, order, payload, spaces):
    """Headers in MindSpore's and NumPy's layout with a field changed: the kernel's own header reading agrees with
    NumPy's on every one it accepts."""
    shape = "(" + ", ".join(map(str, dims)) + ("," if len(dims) == 1 else "") + ")"
    fields = {"descr": f"'descr': '{descr}'", "fortran": f"'fortran_order': {fortran}", "shape": f"'shape': {shape}"}
    text = "{" + (", " if spaces else ",").join(fields[name] for name in order) + ", }"
    header = text.encode("latin1")
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    path = str(tmp_path_factory.mktemp("headers") / "t.npy")
    with open(path, "wb") as handle:
        handle.write(np.lib.format.magic(1, 0) + len(header).to_bytes(2, "little") + header)
        handle.write(np.random.default_rng(payload).standard_normal(payload // 8).tobytes()[:payload])
    _check_against_numpy(path)
