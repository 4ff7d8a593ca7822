"""Placement of dumped kernels in their graph (msdbg/store/placement.py): synthetic graphs, then real dumps."""

import json

import numpy as np
import pytest

from conftest import SCRIPTS, plain_mindspore_dump, run_msdbg
from msdbg.store.dumpdir import DumpDir
from msdbg.store.graph import Graph, Node
from msdbg.store.placement import DumpedKernel, dumped_kernels, place_kernels


def _graph(nodes: list[Node]) -> Graph:
    params = [Node("x", "x", "Parameter", "", shape=(2,))]
    return Graph(0, params + nodes, {"x": False}, [n.full_name for n in nodes])


def _names(placed):
    return {name: (node.full_name if node is not None else None) for (_, name), node in placed.items()}


def test_renumbered_kernels_are_placed_by_run_order_and_size():
    """Backward AddN kernels dumped as -op0/-op1 while the graph says -op1/-op2 (MindSpore 2.10 CPU)."""
    relu = Node("r", "Default/ReLU-op0", "ReLU", "Default", ["x"], (2,))
    add1 = Node("a1", "Gradients/Default/AddN-op1", "AddN", "Gradients/Default", ["r", "r"], (2,))
    add2 = Node("a2", "Gradients/Default/AddN-op2", "AddN", "Gradients/Default", ["a1", "r"], (2,))
    kernels = [DumpedKernel("ReLU", "Default_ReLU-op0", 1), DumpedKernel("AddN", "Gradients_Default_AddN-op0", 2),
               DumpedKernel("AddN", "Gradients_Default_AddN-op1", 3)]
    placed = place_kernels(kernels, _graph([relu, add1, add2]), lambda key: (2,))
    assert _names(placed) == {"Default_ReLU-op0": "Default/ReLU-op0",
                              "Gradients_Default_AddN-op0": "Gradients/Default/AddN-op1",
                              "Gradients_Default_AddN-op1": "Gradients/Default/AddN-op2"}


def test_names_that_contradict_the_dump_times_are_not_trusted():
    """Every file name is a graph name, but the kernel named op1 ran before its graph input (resnet18's
    Expand/_SumExt/ReduceSum-op0..7): the family is placed by run order and size instead."""
    early = Node("e", "Default/Exp-op0", "Exp", "Default", ["x"], (2, 1))
    late = Node("l", "Gradients/Default/Neg-op0", "Neg", "Gradients/Default", ["e"], (2, 1))
    sum0 = Node("s0", "Expand/_SumExt/ReduceSum-op0", "ReduceSum", "Expand/_SumExt", ["e"], ())
    sum1 = Node("s1", "Expand/_SumExt/ReduceSum-op1", "ReduceSum", "Expand/_SumExt", ["l"], (2, 1))
    graph = _graph([early, sum0, late, sum1])
    kernels = [DumpedKernel("Exp", "Default_Exp-op0", 1), DumpedKernel("ReduceSum", "Expand__SumExt_ReduceSum-op1", 2),
               DumpedKernel("Neg", "Gradients_Default_Neg-op0", 3),
               DumpedKernel("ReduceSum", "Expand__SumExt_ReduceSum-op0", 4)]
    shapes = {"Expand__SumExt_ReduceSum-op1": (), "Expand__SumExt_ReduceSum-op0": (2, 1)}
    placed = place_kernels(kernels, graph, lambda key: shapes.get(key[1], (2, 1)))
    assert _names(placed)["Expand__SumExt_ReduceSum-op1"] == "Expand/_SumExt/ReduceSum-op0"
    assert _names(placed)["Expand__SumExt_ReduceSum-op0"] == "Expand/_SumExt/ReduceSum-op1"


def test_names_without_scopes_are_placed_by_their_last_part():
    """MindSpore 2.0 writes ``Conv2D-op3`` for ``Default/net/conv/Conv2D-op3``."""
    conv = Node("c", "Default/net/conv/Conv2D-op3", "Conv2D", "Default/net/conv", ["x"], (2,))
    relu = Node("r", "Default/net/ReLU-op7", "ReLU", "Default/net", ["c"], (2,))
    placed = place_kernels([DumpedKernel("Conv2D", "Conv2D-op3", 1), DumpedKernel("ReLU", "ReLU-op7", 2)],
                           _graph([conv, relu]), lambda key: (2,))
    assert _names(placed) == {"Conv2D-op3": "Default/net/conv/Conv2D-op3", "ReLU-op7": "Default/net/ReLU-op7"}


def test_a_kernel_that_cannot_be_told_is_unplaced_not_guessed():
    """Two renumbered kernels of one family, with sizes that fit neither graph kernel in order: None."""
    relu = Node("r", "Default/ReLU-op0", "ReLU", "Default", ["x"], (2,))
    add1 = Node("a1", "Gradients/Default/AddN-op1", "AddN", "Gradients/Default", ["r", "r"], (2,))
    kernels = [DumpedKernel("ReLU", "Default_ReLU-op0", 1), DumpedKernel("AddN", "Gradients_Default_AddN-op0", 2),
               DumpedKernel("AddN", "Gradients_Default_AddN-op5", 3)]
    placed = place_kernels(kernels, _graph([relu, add1]), lambda key: (2,))
    assert _names(placed)["Gradients_Default_AddN-op0"] is None
    assert _names(placed)["Gradients_Default_AddN-op5"] is None
    wrong_size = place_kernels(kernels[:2], _graph([relu, add1]), lambda key: (3,) if "AddN" in key[1] else (2,))
    assert _names(wrong_size)["Gradients_Default_AddN-op0"] is None


def test_dumped_kernels_are_in_run_order_by_their_first_file():
    kernels = dumped_kernels([("B", "b", 5), ("A", "a", 7), ("B", "b", 3), ("A", "a", 9)])
    assert [(k.op_name, k.first_timestamp) for k in kernels] == [("b", 3), ("a", 7)]


# ----- real dumps ---------------------------------------------------------------------------------------------------
def _check_dataflow(dump) -> int:
    """Every placed kernel's dumped inputs equal the dumped outputs of the kernels the graph says produce them."""
    store = DumpDir(str(dump))
    key = store.steps()[0]
    graph = store.graph(key.rank, key.graph)
    entries = store.tensors(key)
    assert not [e.label for e in entries if e.unplaced]
    outputs = {e.graph_node.name: e for e in entries
               if e.graph_node is not None and e.io == "output" and e.slot == 0 and not e.graph_node.is_parameter}
    checked = 0
    for entry in entries:
        if entry.io != "input" or entry.graph_node is None or entry.slot >= len(entry.graph_node.inputs):
            continue
        source = graph.nodes.get(entry.graph_node.inputs[entry.slot])
        if source is None or source.name not in outputs:
            continue
        assert np.array_equal(entry.load().ravel(), outputs[source.name].load().ravel(), equal_nan=True), entry.label
        checked += 1
    return checked


@pytest.mark.slow
@pytest.mark.parametrize("style", ["jit", "model"])
def test_log_of_zero_behind_an_addn_is_the_origin(tmp_path, style):
    """Hand-written cross entropy -(onehot*log(p)) with p exactly 0; the gradient passes a renumbered AddN."""
    dump = plain_mindspore_dump(SCRIPTS / "xent_log0.py", tmp_path / "dump", style)
    store = DumpDir(str(dump))
    addn = [e for e in store.tensors(store.steps()[0]) if e.file.op_type == "AddN"]
    assert addn and all(e.file.op_name.endswith("AddN-op0") and e.node.endswith("AddN-op1") for e in addn)
    assert _check_dataflow(dump) > 30
    out = tmp_path / "hits.json"
    done = run_msdbg("check", str(dump), "--nx", "-c", "watch tensor_overflow", "--json", str(out))
    assert done.returncode == 1, done.stderr[-2000:]
    hits = json.loads(out.read_text())["hits"]
    origin, = [h for h in hits if h["first_offending"]]
    assert origin["op_type"] == "Log" and origin["step"] == 2 and origin["placed"]
    assert all(h["placed"] for h in hits)


@pytest.mark.slow
@pytest.mark.parametrize("style", ["jit", "model"])
def test_resnet18_log_of_zero_is_the_origin(tmp_path, style):
    """mindcv resnet18: Conv2DBackpropInput/Filter and AddN kernels are dumped under other names than the graph's."""
    pytest.importorskip("mindcv")
    out = tmp_path / "hits.json"
    done = run_msdbg("run", "--batch", "--nx", "-c", "watch tensor_overflow", "--json", str(out),
                     str(SCRIPTS / "resnet_nan.py"), style, timeout=600)
    assert done.returncode == 1, done.stderr[-3000:]
    hits = json.loads(out.read_text())["hits"]
    origin, = [h for h in hits if h["first_offending"]]
    assert origin["op_type"] == "Log" and origin["step"] == 1 and "resnet_nan.py" in origin["source"]
    backprop = [h for h in hits if h["op_type"].startswith("Conv2DBackprop")]
    assert backprop and all(h["placed"] and h["node"].startswith("Gradients/") for h in backprop)
    assert "could not be placed" not in done.stdout


def test_the_report_says_when_hit_tensors_could_not_be_placed():
    from msdbg.engine.hits import Hit
    from msdbg.engine.trace import mark_origins
    from msdbg.frontends.report import summary
    from msdbg.store.dumpdir import StepKey, TensorEntry
    from msdbg.store.filenames import TensorFileName

    log = Node("l", "Default/Log-op0", "Log", "Default", ["x"], (2,))
    graph = _graph([log])
    step = StepKey(0, "Net", 0, 3)

    def hit(node, op_type, name, order):
        file = TensorFileName(op_type, name, 0, 0, order, "output", 0, "DefaultFormat", "Float32")
        entry = TensorEntry(step, f"/d/{name}.npy", file, node.full_name if node else name, op_type, "activation",
                            None, order, node, unplaced=node is None)
        return Hit(1, "tensor_overflow", entry, {"nan": 1}, {})

    unplaced_late = [hit(log, "Log", "Default_Log-op0", 1), hit(None, "AddN", "Gradients_Default_AddN-op0", 2)]
    mark_origins(unplaced_late, graph)
    assert [h.first_offending for h in unplaced_late] == [True, False]
    text = "\n".join(summary(unplaced_late))
    assert "origin: Log Default/Log-op0" in text
    assert "1 of these tensors could not be placed in the graph (e.g. AddN Gradients_Default_AddN-op0)" in text
    unplaced_first = [hit(None, "AddN", "Gradients_Default_AddN-op0", 0), hit(log, "Log", "Default_Log-op0", 1)]
    mark_origins(unplaced_first, graph)
    assert [h.first_offending for h in unplaced_first] == [True, False]
    assert "not placed in the graph" in "\n".join(summary(unplaced_first))
