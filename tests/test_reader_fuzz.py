"""Property tests for what reads files and names: mutated .npy files, dump file names, step specs, numbers.

Only msdbg's own error class may escape. Fixed seeds (derandomize); ``MSDBG_HYPOTHESIS_EXAMPLES=N`` runs more.
"""

import io
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from msdbg.engine.stats import STAT_NAMES, compute_stats
from msdbg.errors import MsdbgError
from msdbg.numeric import PERCENTAGE, POSITIVE_COUNT, Range, parse_float, parse_int
from msdbg.store.filenames import parse_tensor_filename
from msdbg.store.npyfile import open_npy
from msdbg.store.stepspec import parse_step_spec

EXAMPLES = os.environ.get("MSDBG_HYPOTHESIS_EXAMPLES")


def fuzz(default: int) -> settings:
    """Fixed seeds; ``default`` examples, or MSDBG_HYPOTHESIS_EXAMPLES."""
    return settings(max_examples=int(EXAMPLES or default), derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


READ_STATS = STAT_NAMES - {"change", "range_count"}


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


SEEDS = [_npy(a) for a in (np.arange(12, dtype=np.float32).reshape(3, 4), np.array(2.5, np.float16),
                           np.array([True, False]), np.arange(6, dtype=">i4"), np.zeros((0, 3), np.float64),
                           np.asfortranarray(np.ones((2, 3), np.float32)), np.array([np.nan, np.inf], np.float32))]
HEADER_WORDS = [b"(", b")", b"[", b"{", b"}", b"'", b"-1", b"-4", b"99999999999999999999", b"1e3", b"'<c8'",
                b"'<U3'", b"'|O'", b"'<M8[s]'", b"[('a', '<f4')]", b"'V2'", b"True", b"None", b"\x00", b"\n",
                b"'shape'", b"'descr'", b"'fortran_order'", b",", b":", b"((((((((((", b"\xff", b"\\", b"#"]


@st.composite
def mutated_npy(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    header_end = 10 + int.from_bytes(data[8:10], "little")
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "length", "version"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        in_header = min(draw(st.integers(6, max(header_end - 1, 6))), max(len(data) - 1, 0))
        if kind == "flip" and data:
            data[in_header if draw(st.booleans()) else at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[in_header:in_header] = draw(st.sampled_from(HEADER_WORDS))
        elif kind == "delete":
            del data[in_header:in_header + draw(st.integers(1, 8))]
        elif kind == "truncate":
            del data[at:]
        elif kind == "length" and len(data) >= 10:
            data[8:10] = draw(st.integers(0, 65535)).to_bytes(2, "little")
        elif kind == "version" and len(data) >= 8:
            data[6] = draw(st.integers(0, 4))
    return bytes(data)


@fuzz(1500)
@given(data=mutated_npy())
def test_mutated_npy_files_raise_only_msdbg_errors(tmp_path, data):
    path = tmp_path / "Op.name.0.0.1.output.0.DefaultFormat.Float32.npy"
    path.write_bytes(data)
    try:
        array = open_npy(str(path))
    except MsdbgError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
        return
    assert array.dtype.kind in "biufV" and all(dim >= 0 for dim in array.shape)
    if array.dtype.kind != "V":
        stats = compute_stats(array, READ_STATS)
        assert stats.size == array.size


@fuzz(300)
@given(name=st.one_of(st.text(max_size=80), st.builds(
    lambda op, fields: ".".join([op, *fields]) + ".npy", st.text(max_size=10),
    st.lists(st.one_of(st.sampled_from(["0", "1", "²", "٣", "output", "input", "Float32", "", "-1"]),
                       st.text(max_size=5)), max_size=10))))
def test_file_names_parse_or_are_not_tensor_files(name):
    parsed = parse_tensor_filename(name)
    if parsed is not None:
        tail = name[len(parsed.op_type) + 1 + len(parsed.op_name):]
        assert parsed.io in ("input", "output") and parsed.slot >= 0
        fields = tail.split(".")
        numbers = [*fields[1:4], fields[5]]  # task, stream, timestamp, slot
        assert all(f.isascii() and f.isdigit() for f in numbers), "numbers in a file name are ASCII digits"


@fuzz(300)
@given(spec=st.one_of(st.text(max_size=30), st.lists(
    st.one_of(st.sampled_from(["0", "5", "²", "٣", "-", "|", "all", " ", "9" * 30, "1-3", "3-1"]),
              st.text(max_size=3)), max_size=8).map("".join)))
def test_step_specs_parse_or_raise_msdbg_errors(spec):
    try:
        parsed = parse_step_spec(spec)
    except MsdbgError as exc:
        assert "--steps" in str(exc)
        return
    assert parsed.ranges is None or all(low <= high for low, high in parsed.ranges)


@fuzz(300)
@given(text=st.one_of(st.text(max_size=12), st.from_regex(r"[+-]?[0-9]{1,6}(\.[0-9]*)?(e[+-]?[0-9]+)?",
                                                          fullmatch=True)),
       valid=st.sampled_from([PERCENTAGE, POSITIVE_COUNT, Range(low=0, high=1, low_open=True, high_open=True),
                              Range()]))
def test_numbers_parse_in_range_or_raise_msdbg_errors(text, valid):
    for parse in (parse_int, parse_float):
        try:
            value = parse(text, "x", valid)
        except MsdbgError as exc:
            assert str(exc).startswith("x: ") and "\n" not in str(exc)
            continue
        assert text.isascii() and value in valid


@pytest.mark.parametrize("text", ["²", "٣", "١٠", "1_0", " 1", "0x1", "1.", ""])
def test_non_ascii_or_odd_integers_are_refused(text):
    with pytest.raises(MsdbgError):
        parse_int(text, "n")
