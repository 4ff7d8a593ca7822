"""`msdbg check` on statistics-only dumps (GPU/Ascend ``saved_data: statistic``).

CPU cannot write such dumps, so the fixtures are built by tests/fixtures_statistic.py, which follows MindSpore's
documented statistic.csv layout exactly (see its docstring for the documentation page and source files).
"""

import json

import numpy as np

from conftest import run_msdbg
from fixtures_statistic import ALL_CATEGORIES, write_statistic_dump

WEIGHT = np.zeros((4, 4), np.float32)
ACTIVATION = np.array([[1.0, -np.inf], [2.0, 3.0]], np.float32)
BIG = np.full((8,), 1000.0, np.float32)


def _rows():
    return {
        0: [dict(op_type="Parameter", op_name="fc1.weight", io="output", slot=0, array=WEIGHT),
            dict(op_type="Log", op_name="Default/network-WithLossCell/_backbone-Net/Log-op0", io="output", slot=0,
                 array=ACTIVATION),
            dict(op_type="MatMul", op_name="Default/network-WithLossCell/_backbone-Net/fc2-Dense/MatMul-op1",
                 io="output", slot=0, array=BIG)],
        1: [dict(op_type="MatMul", op_name="Default/network-WithLossCell/_backbone-Net/fc2-Dense/MatMul-op1",
                 io="output", slot=0, array=BIG / 10)],
    }


def _check(tmp_path, categories, *commands):
    dump = write_statistic_dump(tmp_path / "dump", _rows(), categories=categories)
    out = tmp_path / "hits.json"
    args = ["check", str(dump), "--nx", "--json", str(out)]
    for command in commands:
        args += ["-c", command]
    done = run_msdbg(*args)
    return done, json.loads(out.read_text())["hits"] if out.exists() else None


def test_every_column_decides_the_conditions_it_can(tmp_path):
    done, hits = _check(tmp_path, ALL_CATEGORIES, "watch tensor_overflow", "watch tensor_too_large max_gt=500",
                        "watch tensor_all_zero", "watch tensor_too_small abs_mean_lt=1e-9",
                        "watch weight_not_changed")
    assert done.returncode == 1, done.stderr
    found = {(h["condition"], h["node"].rsplit("/", 1)[-1], h["step"]) for h in hits}
    assert found == {
        ("tensor_overflow", "Log-op0", 0),
        ("tensor_too_large", "MatMul-op1", 0),
        ("tensor_all_zero", "fc1.weight", 0),
        # NaN/Inf never passes a bound silently: the Log output hits the bound conditions too, saying why
        ("tensor_too_large", "Log-op0", 0),
        ("tensor_all_zero", "Log-op0", 0),
    }
    log_bound = next(h for h in hits if h["condition"] == "tensor_too_large" and h["op_type"] == "Log")
    assert any("not finite" in reason for reason in log_bound["reasons"])
    overflow = next(h for h in hits if h["condition"] == "tensor_overflow")
    assert overflow["stats"]["neg_inf"] == 1 and overflow["first_offending"]
    weight = next(h for h in hits if h["condition"] == "tensor_all_zero" and h["op_type"] == "Parameter")
    assert weight["category"] == "weight" and weight["param"] == "fc1.weight"
    stderr = done.stderr
    assert "watchpoint 4 (tensor_too_small) needs tensor data" in stderr and "abs_sum" in stderr
    assert "watchpoint 5 (weight_not_changed) needs tensor data" in stderr
    assert stderr.count("watchpoint 4 (tensor_too_small) needs tensor data") == 1, "said once per watchpoint"


def test_a_subset_of_columns_limits_what_can_be_decided(tmp_path):
    done, hits = _check(tmp_path, ["min", "max"], "watch tensor_overflow", "watch tensor_too_large max_gt=500")
    assert {(h["condition"], h["step"]) for h in hits} == {("tensor_too_large", 0)}
    assert "watchpoint 1 (tensor_overflow) needs tensor data" in done.stderr and "nonfinite" in done.stderr
    assert "watchpoint 2 (tensor_too_large): statistic.csv has no NaN/Inf count columns" in done.stderr


def test_a_corrupt_statistic_file_is_an_error_and_other_steps_are_checked(tmp_path):
    dump = write_statistic_dump(tmp_path / "dump", _rows(), categories=ALL_CATEGORIES)
    broken = dump / "rank_0" / "Net" / "0" / "1" / "statistic.csv"
    broken.write_text(broken.read_text().replace("MatMul,", "MatMul,x,", 1))
    done = run_msdbg("check", str(dump), "--nx", "-c", "watch tensor_too_large max_gt=500")
    assert done.returncode == 2
    assert str(broken) in done.stderr and "line 2" in done.stderr
    assert "step 0 (rank 0, graph 0): watchpoint 1 tensor_too_large" in done.stdout
