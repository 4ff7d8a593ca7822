"""`msdbg compare` where a side holds statistics only (GPU/Ascend ``saved_data: statistic``): the pairs are compared
by the statistics both sides hold. CPU cannot write such dumps: tests/fixtures_statistic.py builds them following
MindSpore's documented statistic.csv layout (see its docstring)."""

import json

import numpy as np

from conftest import run_msdbg
from fixtures_statistic import ALL_CATEGORIES, write_statistic_dump

X = np.linspace(-1, 1, 32, dtype=np.float32).reshape(4, 8)


def _rows(scale: float):
    layer = "Default/network-WithLossCell/_backbone-Net"
    return {0: [dict(op_type="MatMul", op_name=f"{layer}/fc1-Dense/MatMul-op0", io="output", slot=0, array=X),
                dict(op_type="ReLU", op_name=f"{layer}/ReLU-op0", io="output", slot=0, array=np.maximum(X, 0) * scale),
                dict(op_type="Tanh", op_name=f"{layer}/Tanh-op0", io="output", slot=0, array=np.tanh(X) * scale)]}


def test_statistics_only_dumps_compare_by_statistics(tmp_path):
    a = write_statistic_dump(tmp_path / "a", _rows(1.0), categories=ALL_CATEGORIES)
    same = write_statistic_dump(tmp_path / "same", _rows(1.0), categories=ALL_CATEGORIES)
    b = write_statistic_dump(tmp_path / "b", _rows(1.5), categories=ALL_CATEGORIES)
    done = run_msdbg("compare", str(a), str(same))
    assert done.returncode == 0, done.stdout + done.stderr
    out = tmp_path / "r.json"
    done = run_msdbg("compare", str(a), str(b), "--json", str(out))
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert [p["basis"] for p in report["pairs"]] == ["statistics"] * 3
    assert [p["within"] for p in report["pairs"]] == [True, False, False]
    [first] = report["first_divergence"]  # no graph: the first out of tolerance in execution order
    assert first["op_type"] == "ReLU" and first["max_abs"] > 0.4 and first["cosine"] is None


def test_tensor_dump_against_statistics_dump(tmp_path):
    """A CPU tensor dump (reference) against a device's statistics-only dump of the same ops."""
    a = tmp_path / "a"
    folder = a / "rank_0" / "Net" / "0" / "0"
    folder.mkdir(parents=True)
    for index, row in enumerate(_rows(1.0)[0]):
        name = row["op_name"].replace("/", "_")
        np.save(folder / f"{row['op_type']}.{name}.0.0.{1000 + index}.output.0.DefaultFormat.Float32.npy", row["array"])
    b = write_statistic_dump(tmp_path / "b", _rows(1.5), categories=["max", "min", "avg", "l2norm", "count"])
    out = tmp_path / "r.json"
    done = run_msdbg("compare", str(a), str(b), "--json", str(out))
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert [(p["op_type"], p["within"], p["basis"]) for p in report["pairs"]] == [
        ("MatMul", True, "statistics"), ("ReLU", False, "statistics"), ("Tanh", False, "statistics")]
    assert report["first_divergence"][0]["op_type"] == "ReLU"
