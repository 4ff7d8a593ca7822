"""Dumps of older MindSpore releases, and checks that evaluate nothing.

Fixtures: ``fixtures/ms20_dump`` is real, written by MindSpore 2.0.0's own e2e dump on CPU (see
``fixtures/make_ms20_dump.py``): names ``{Op}.{op_name}.{task}.{stream}.{timestamp}.{io}.{slot}.{format}.npy``, no
dtype field, op names without scopes (``Log-op45``), parameters with their dots (``Parameter.fc1.weight``).
The Ascend O0/O1 layout of the r2.4-r2.6 docs (``...{format}.{dtype}.npy``, lower-case dtype, unscoped names:
``Conv2D.Conv2D-op12.0.0.1623124369613540.output.0.DefaultFormat.float16.npy``; bfloat16 saved as float32) is
made here from the real 2.0 files by renaming them as the docs say: it follows the docs, it was not written by
MindSpore.
"""

import json
import shutil
from pathlib import Path

import numpy as np

from conftest import run_msdbg
from msdbg.store.dumpdir import DumpDir
from msdbg.store.filenames import parse_tensor_filename

MS20 = Path(__file__).resolve().parent / "fixtures" / "ms20_dump"


def _check(dump: Path, tmp_path: Path, *watch: str):
    out = tmp_path / "hits.json"
    done = run_msdbg("check", str(dump), "--nx", *[a for w in watch for a in ("-c", w)], "--json", str(out))
    return done, (json.loads(out.read_text()) if out.exists() else None)


def test_ms20_names_parse_without_a_dtype_field():
    parsed = parse_tensor_filename("Log.Log-op45.0.0.1796130975497389.output.0.DefaultFormat.npy")
    assert (parsed.op_type, parsed.op_name, parsed.io, parsed.slot, parsed.format, parsed.dtype) == \
        ("Log", "Log-op45", "output", 0, "DefaultFormat", "")
    param = parse_tensor_filename("Parameter.moment1.fc1.bias.0.0.1796130975627058.output.0.DefaultFormat.npy")
    assert (param.op_type, param.op_name) == ("Parameter", "moment1.fc1.bias")


def test_ms20_dump_is_placed_and_read():
    store = DumpDir(str(MS20))
    assert [k.iteration for k in store.steps()] == [0, 1, 2]
    entries = store.tensors(store.steps()[-1])
    assert entries and all(e.graph_node is not None for e in entries)
    log = next(e for e in entries if e.file.op_name == "Log-op45" and e.io == "output")
    assert log.node == "Default/Log-op45" and log.dtype == "float32" and np.isneginf(log.load()).sum() == 1
    weight = next(e for e in entries if e.file.op_name == "fc1.weight")
    assert weight.category == "weight" and weight.param == "fc1.weight"
    assert {e.category for e in entries if e.io == "output" and e.graph_node.op_type == "BiasAddGrad"} == {"gradient"}


def test_ms20_dump_check_finds_the_log_of_zero(tmp_path):
    done, report = _check(MS20, tmp_path, "watch tensor_overflow")
    assert done.returncode == 1, done.stderr
    assert "msdbg: 37 hits in 3 steps" in done.stdout and "note:" not in done.stderr
    origin, = [h for h in report["hits"] if h["first_offending"]]
    assert (origin["node"], origin["step"], origin["placed"]) == ("Default/Log-op45", 2, True)
    assert {h["step"] for h in report["hits"]} == {2}


def _as_documented_ascend(tmp_path: Path) -> Path:
    """The 2.0 dump renamed to the r2.4-r2.6 Ascend O0/O1 layout: '.{dtype}' (lower case) before '.npy'."""
    dump = tmp_path / "ascend_doc_dump"
    shutil.copytree(MS20, dump)
    for path in dump.glob("rank_0/Net/0/*/*.npy"):
        dtype = np.load(path, mmap_mode="r").dtype.name
        path.rename(path.with_name(path.name[:-len(".npy")] + f".{dtype}.npy"))
    return dump


def test_documented_ascend_layout_with_lower_case_dtype(tmp_path):
    dump = _as_documented_ascend(tmp_path)
    sample = next(dump.glob("rank_0/Net/0/2/Log.Log-op45.*.output.0.DefaultFormat.float32.npy"))
    assert parse_tensor_filename(sample.name).dtype == "float32"
    done, report = _check(dump, tmp_path, "watch tensor_overflow")
    assert done.returncode == 1 and "note:" not in done.stderr, done.stderr
    origin, = [h for h in report["hits"] if h["first_offending"]]
    assert origin["node"] == "Default/Log-op45"


def test_documented_bfloat16_saved_as_float32_is_silent(tmp_path):
    """dump.md: bfloat16 tensors are saved converted to float32; the name keeps bfloat16."""
    dump = _as_documented_ascend(tmp_path)
    for path in dump.glob("rank_0/Net/0/*/MatMul.*.float32.npy"):
        path.rename(path.with_name(path.name.replace(".float32.npy", ".bfloat16.npy")))
    done, report = _check(dump, tmp_path, "watch tensor_overflow")
    assert done.returncode == 1 and "note:" not in done.stderr, done.stderr
    assert any(h["op_type"] == "MatMul" for h in report["hits"])


def test_a_check_that_evaluated_nothing_is_not_clean(tmp_path):
    unknown = tmp_path / "dump" / "rank_0" / "Net" / "0" / "0"
    unknown.mkdir(parents=True)
    (unknown / "Log.Log-op1.output.weird.npy").write_bytes(b"")
    done, _ = _check(tmp_path / "dump", tmp_path, "watch tensor_overflow")
    assert done.returncode == 2
    error_lines = [line for line in done.stderr.splitlines() if "error" in line]
    assert error_lines == ["msdbg: error: no tensor was checked (the watchpoints evaluated none of the tensors of 1 "
                           "step): this is not a clean result"]
    done, _ = _check(MS20, tmp_path, "watch tensor_overflow on NoSuchOp")
    assert done.returncode == 2 and "no tensor was checked" in done.stderr
    done = run_msdbg("check", str(MS20), "--nx")
    assert done.returncode == 2 and "no watchpoints, so nothing would be checked" in done.stderr
