"""Graph files inside a training (MindSpore imported: pure-Python protobuf) are parsed by a child interpreter."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT
from msdbg.store import pbreader


def _write_graph(path, nodes: int) -> None:
    """A synthetic ModelProto (anf_ir.proto) chain of ``nodes`` ReLU CNodes after one parameter."""
    model = pbreader.anf_ir_pb2().ModelProto()
    param = model.graph.parameters.add()
    param.name = "w"
    param.type.tensor_type.elem_type = 11  # DT_FLOAT32
    for dim in (4, 8):
        param.type.tensor_type.shape.dim.add().size = dim
    previous = "w"
    for index in range(nodes):
        node = model.graph.node.add()
        node.name, node.op_type = f"{index}", "ReLU"
        node.full_name = f"Default/block{index}/ReLU-op{index}"
        node.scope = f"Default/block{index}"
        node.input.add().name = previous
        node.output_type.tensor_type.shape.dim.add().size = index % 7 + 1
        previous = node.name
    path.write_bytes(model.SerializeToString())


_IN_TRAINING = """
import sys
sys.path.insert(0, {root!r})
import mindspore
from msdbg.store import pbreader
calls = []
run = pbreader.subprocess.run
pbreader.subprocess.run = lambda *a, **k: calls.append(a) or run(*a, **k)
print(pbreader._pure_python_protobuf())
try:
    rows = pbreader.read_rows({path!r})
    print(len(calls), rows == pbreader._parse({path!r}), len(rows), rows[0], rows[-1])
except pbreader.GraphError as exc:
    print(len(calls), "GraphError", exc)
"""


def _in_training(path) -> list[str]:
    done = subprocess.run([sys.executable, "-c", _IN_TRAINING.format(root=str(ROOT), path=str(path))],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()


def test_large_graph_is_parsed_by_a_child_with_the_same_rows(tmp_path):
    path = tmp_path / "ms_output_trace_code_graph_0.pb"
    _write_graph(path, 30_000)
    assert path.stat().st_size > pbreader.CHILD_PARSE_BYTES
    pure_python, outcome = _in_training(path)
    assert pure_python == "True"  # importing MindSpore switched protobuf to pure Python
    assert outcome == ("1 True 30001 ('w', 'w', 'Parameter', '', [], (4, 8), 'float32') "
                       "('29999', 'Default/block29999/ReLU-op29999', 'ReLU', 'Default/block29999', ['29998'], (5,), "
                       "'')")


def test_corrupt_large_graph_names_the_file(tmp_path):
    path = tmp_path / "ms_output_trace_code_graph_1.pb"
    path.write_bytes(b"\xff" * (pbreader.CHILD_PARSE_BYTES + 10))
    pure_python, outcome = _in_training(path)
    assert outcome == f"1 GraphError graph file {path}: cannot be parsed (DecodeError)"


def test_small_graph_is_parsed_in_process(tmp_path):
    path = tmp_path / "g.pb"
    _write_graph(path, 3)
    assert [row[0] for row in pbreader.read_rows(str(path))] == ["w", "0", "1", "2"]
