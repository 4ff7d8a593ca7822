"""statistic.csv (MindSpore statistic dump) -> StatisticRow/TensorStats, through fixtures in MindSpore's layout."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
from fixtures_statistic import ALL_CATEGORIES, COMMON_HEADER, write_statistic_dump

from msdbg.engine.stats import STAT_NAMES, compute_stats
from msdbg.store.npyfile import TensorFileError
from msdbg.store.statistic import read_statistic_csv

RTOL = 1e-5  # MindSpore prints doubles with 6 significant digits
SCOPE = "Default/network-WithLossCell/_backbone-Net/fc1-Dense/"
EVERYTHING = {"nonfinite", "nan", "pos_inf", "neg_inf", "zero", "neg", "pos", "min", "max", "sum", "sq_sum",
              "finite_count"}


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    grad = rng.normal(size=(16, 8)).astype(np.float32)
    grad[1, 2], grad[3, 4], grad[5, 6], grad[7, 0] = np.nan, np.inf, -np.inf, np.nan
    spiky = np.array([1.5, -3.0, np.inf, 0.0, 2.0], dtype=np.float32)  # +Inf only: min still exact
    return {
        "activation": rng.normal(size=(16, 8)).astype(np.float32),
        "grad_nan": grad,
        "spiky": spiky,
        "zero_weight": np.zeros((4, 3), dtype=np.float16),
        "labels": np.array([3, -1, 0, 7, 0, 2], dtype=np.int32),
        "scalar_loss": np.array(0.693147, dtype=np.float32),
    }


def _rows(arrays: dict[str, np.ndarray]) -> list[dict]:
    return [{"op_type": "MatMul", "op_name": f"{SCOPE}MatMul-op{i}", "io": "output" if i % 2 else "input",
             "slot": i % 3, "array": array} for i, array in enumerate(arrays.values())]


def _dump(tmp_path, categories, arrays=None):
    arrays = _arrays() if arrays is None else arrays
    root = write_statistic_dump(tmp_path / "dump", {3: _rows(arrays)}, categories=categories)
    return root / "rank_0" / "Net" / "0" / "3" / "statistic.csv", arrays


def _expected(array: np.ndarray) -> dict:
    """msdbg's conventions, straight from NumPy: NaN/Inf counted apart, everything else over finite elements."""
    values = np.asarray(array, dtype=np.float64).ravel()
    finite = values[np.isfinite(values)]
    return {
        "size": values.size, "nan": int(np.isnan(values).sum()), "pos_inf": int((values == np.inf).sum()),
        "neg_inf": int((values == -np.inf).sum()), "zero": int((finite == 0).sum()), "neg": int((finite < 0).sum()),
        "pos": int((finite > 0).sum()), "finite_count": finite.size,
        "min": float(finite.min()) if finite.size else None, "max": float(finite.max()) if finite.size else None,
        "sum": float(finite.sum()), "sq_sum": float(finite @ finite),
    }


def _check(row, array, available):
    expected = _expected(array)
    assert row.available == frozenset(available)
    assert row.stats.size == expected["size"] and row.stats.shape == array.shape
    assert row.stats.dtype == row.data_type == array.dtype.name
    for name in ("nan", "pos_inf", "neg_inf", "zero", "neg", "pos", "finite_count", "min", "max", "sum", "sq_sum"):
        value = getattr(row.stats, name)
        if name not in available:
            assert value is None, name
        elif isinstance(value, int):
            assert value == expected[name], name
        else:
            assert value == pytest.approx(expected[name], rel=RTOL, abs=1e-6), name
    for name in ("abs_sum", "range_count", "change_exceed"):
        assert getattr(row.stats, name) is None


def test_layout_is_mindspores_documented_one(tmp_path):
    path, arrays = _dump(tmp_path, ["max", "min", "l2norm"])  # the documented default statistic_category
    lines = path.read_text().split("\n")
    assert lines[0] == COMMON_HEADER + ",Max Value,Min Value,L2Norm Value"
    assert lines[0].startswith("Op Type,Op Name,Task ID,Stream ID,Timestamp,IO,Slot,Data Size,Data Type,Shape")
    assert lines[1].startswith(f'MatMul,{SCOPE}MatMul-op0,0,0,') and ',input,0,512,float32,"(16,8)",' in lines[1]
    assert lines[1].endswith(",") and lines[-1] == ""  # every row closed by an empty field, then a newline
    assert ',"()",' in lines[6]


def test_every_column_round_trips(tmp_path):
    path, arrays = _dump(tmp_path, ALL_CATEGORIES)
    rows = read_statistic_csv(str(path))
    assert len(rows) == len(arrays)
    for i, (row, (name, array)) in enumerate(zip(rows, arrays.items())):
        assert (row.op_type, row.op_name, row.io, row.slot) == ("MatMul", f"{SCOPE}MatMul-op{i}",
                                                                "output" if i % 2 else "input", i % 3)
        assert (row.task_id, row.stream_id) == (0, 0) and row.timestamp > 0
        assert row.digest == hashlib.md5(array.tobytes()).hexdigest()
        if name == "grad_nan":  # NaN: MindSpore's max/min/avg/l2 are nan, so only the counts answer
            _check(row, array, EVERYTHING - {"min", "max", "sum", "sq_sum"})
        elif name == "spiky":  # +Inf, no NaN: max is inf (cannot be judged), min is the exact finite min
            _check(row, array, EVERYTHING - {"max", "sum", "sq_sum"})
            assert row.stats.min == -3.0
        else:
            _check(row, array, EVERYTHING)


def test_nan_gradient_reports_its_nonfinite_elements(tmp_path):
    path, arrays = _dump(tmp_path, ALL_CATEGORIES)
    row = read_statistic_csv(str(path))[1]
    assert (row.stats.nan, row.stats.pos_inf, row.stats.neg_inf) == (2, 1, 1)
    assert row.stats.has_nonfinite and row.stats.nonfinite_count == 4 and row.stats.finite_count == 124
    assert row.stats.max is None and row.stats.min is None and row.stats.mean is None
    zero_weight = read_statistic_csv(str(path))[3]
    assert zero_weight.stats.zero == 12 and zero_weight.stats.max == 0.0 and zero_weight.stats.l2norm == 0.0


def test_a_subset_in_another_order(tmp_path):
    categories = ["l2norm", "zero count", "count", "max", "nan count", "avg"]
    path, arrays = _dump(tmp_path, categories)
    header = path.read_text().split("\n")[0]
    assert header.endswith(",L2Norm Value,Zero Count,Count,Max Value,Nan Count,Avg Value")
    rows = read_statistic_csv(str(path))
    finite_answers = {"zero", "max", "nan", "sq_sum", "sum"}  # no inf counts: no nonfinite, finite_count, neg, pos
    _check(rows[0], arrays["activation"], finite_answers)
    _check(rows[1], arrays["grad_nan"], {"zero", "nan"})
    _check(rows[3], arrays["zero_weight"], finite_answers)
    _check(rows[4], arrays["labels"], finite_answers)
    assert rows[0].digest is None and rows[0].stats.mean is None  # sum without finite_count: no mean


def test_only_max_and_min(tmp_path):
    path, arrays = _dump(tmp_path, ["max", "min"])
    rows = read_statistic_csv(str(path))
    for row, (name, array) in zip(rows, arrays.items()):
        if name == "grad_nan":
            _check(row, array, set())
        elif name == "spiky":
            _check(row, array, {"min"})
        else:
            _check(row, array, {"max", "min"})
            assert row.stats.size == array.size  # from the shape, without a Count column


def test_answers_agree_with_compute_stats(tmp_path):
    path, arrays = _dump(tmp_path, ALL_CATEGORIES)
    for row, array in zip(read_statistic_csv(str(path)), arrays.values()):
        assert row.available <= STAT_NAMES
        engine = compute_stats(array, row.available)
        for name in ("nan", "pos_inf", "neg_inf", "zero", "neg", "pos", "finite_count", "min", "max", "sum",
                     "sq_sum"):
            if name in row.available:
                assert getattr(row.stats, name) == pytest.approx(getattr(engine, name), rel=RTOL, abs=1e-6)


def test_older_fixed_header_and_tolerated_forms(tmp_path):
    # The pre-statistic_category writer: fixed header with "NaN Count"/"L2 Value", no trailing comma, "null" when
    # every element is NaN/Inf. Also: a BOM, CRLF, an extra column, unquoted/spaced shapes, blank trailing lines.
    header = ("Op Type,Op Name,Task ID,Stream ID,Timestamp,IO,Slot,Data Size,Data Type,Shape,Max Value,Min Value,"
              "Avg Value,Count,Negative Zero Count,Positive Zero Count,NaN Count,Negative Inf Count,"
              "Positive Inf Count,Zero Count,L2 Value,MD5,Extra")
    text = ("\ufeff" + header + "\r\n"
            'Add,Add-op3,1,2,1623124369613540,output,0,16,float32,"(2, 2)",4,-2,1,4,1,3,0,0,0,0,5.83095,abc,x\r\n'
            'Log,Log-op4,1,2,1623124369613541,input,1,8,float32,"2,1",null,null,null,2,0,1,1,0,1,0,nan,,y\r\n'
            "\r\n\r\n")
    path = tmp_path / "statistic.csv"
    path.write_bytes(text.encode("utf-8"))
    add, log = read_statistic_csv(str(path))
    assert add.shape == (2, 2) and log.shape == (2, 1) and add.digest == "abc" and log.digest is None
    assert (add.stats.max, add.stats.min, add.stats.sum, add.stats.neg, add.stats.pos) == (4.0, -2.0, 4.0, 1, 3)
    assert add.stats.sq_sum == pytest.approx(34.0, rel=RTOL) and add.available == EVERYTHING
    assert log.stats.nonfinite_count == 2 and log.available == EVERYTHING - {"min", "max", "sum", "sq_sum"}


def test_sha1_column_and_scalar_shapes(tmp_path):
    path = tmp_path / "statistic.csv"
    path.write_text(COMMON_HEADER + ",SHA1\n" + 'Mul,Mul-op1,0,0,5,output,0,4,float32,"()",da39a3ee,\n'
                    + 'Mul,Mul-op1,0,0,5,output,1,4,float32,"(3,)",,\n')
    scalar, vector = read_statistic_csv(str(path))
    assert scalar.shape == () and scalar.stats.size == 1 and scalar.digest == "da39a3ee" and not scalar.available
    assert vector.shape == (3,) and vector.digest is None


@pytest.mark.parametrize("content", ["", COMMON_HEADER + ",Max Value\n", "\ufeff" + COMMON_HEADER + "\n\n"])
def test_header_only_or_empty_file(tmp_path, content):
    path = tmp_path / "statistic.csv"
    path.write_text(content, encoding="utf-8")
    assert read_statistic_csv(str(path)) == []


GOOD = 'Add,Add-op3,0,0,7,output,0,16,float32,"(2,2)",4,\n'


@pytest.mark.parametrize("body, line, words", [
    ("Op Type,Op Name,Task ID,Stream ID,Timestamp,IO,Slot,Data Size,Data Type,Max Value\n" + GOOD, 1, "Shape"),
    (COMMON_HEADER + ",Max Value\n" + GOOD + GOOD.replace(",4,", ",4.x,"), 3, "Max Value '4.x' is not a number"),
    (COMMON_HEADER + ",Max Value\n" + GOOD.replace(",7,", ",7s,"), 2, "Timestamp '7s' is not an integer"),
    (COMMON_HEADER + ",Count\n" + GOOD.replace(",4,", ",4.5,"), 2, "Count '4.5' is not an integer"),
    (COMMON_HEADER + ",Max Value\n" + GOOD + GOOD.replace(",4,", ",4,5,"), 3, "13 fields, the header has 11"),
    (COMMON_HEADER + ",Max Value\n" + GOOD.replace('"(2,2)"', "(2,2)"), 2, "13 fields"),
    (COMMON_HEADER + ",Max Value\n" + GOOD.replace('"(2,2)"', '"(2,x)"'), 2, "Shape '(2,x)'"),
    (COMMON_HEADER + ",Max Value\n" + GOOD.replace("output", "out"), 2, "IO 'out'"),
])
def test_bad_files_name_file_and_line(tmp_path, body, line, words):
    path = tmp_path / "statistic.csv"
    path.write_text(body)
    with pytest.raises(TensorFileError) as caught:
        read_statistic_csv(str(path))
    message = str(caught.value)
    assert f"statistic file {path}, line {line}: " in message and words in message and "\n" not in message


@pytest.mark.parametrize("cut", [1, 3, 12])
def test_truncated_last_line(tmp_path, cut):
    path, _ = _dump(tmp_path, ALL_CATEGORIES)
    data = path.read_bytes()
    path.write_bytes(data[:-cut])
    with pytest.raises(TensorFileError, match=rf"statistic file {path}, line 7: "):
        read_statistic_csv(str(path))


def test_unreadable_files(tmp_path):
    with pytest.raises(TensorFileError, match="cannot be read"):
        read_statistic_csv(str(tmp_path / "missing.csv"))
    path = tmp_path / "statistic.csv"
    path.write_bytes((COMMON_HEADER + "\n").encode() + b'Add,\xff\xfe,0,0,7,output,0,16,float32,"(2,2)",\n')
    with pytest.raises(TensorFileError, match=r"line 2: not UTF-8 text"):
        read_statistic_csv(str(path))


def test_empty_tensor_has_no_bounds(tmp_path):
    path, _ = _dump(tmp_path, ["max", "min", "count", "avg", "l2norm"], {"e": np.zeros((0, 4), np.float32)})
    (row,) = read_statistic_csv(str(path))
    assert row.stats.size == 0 and row.stats.max is None and row.stats.min is None
    assert row.available == {"sum", "sq_sum"} and math.isclose(row.stats.sum, 0.0)
