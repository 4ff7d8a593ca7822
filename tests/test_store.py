"""The store on real dumps MindSpore wrote in this test session (no msdbg during training)."""

import numpy as np
import pytest

from msdbg.errors import MsdbgError
from msdbg.store.dumpdir import DumpDir
from msdbg.store.npyfile import SMALL_FILE_BYTES, TensorFileError, open_npy


def _entries(dump_root, iteration=0):
    dump = DumpDir(str(dump_root))
    step = next(k for k in dump.steps() if k.iteration == iteration)
    return dump, step, dump.tensors(step)


def test_structure_of_jit_loop_dump(jit_nan_dump):
    dump = DumpDir(str(jit_nan_dump))
    assert dump.ranks() == [0]
    steps = dump.steps()
    assert [k.iteration for k in steps] == list(range(6))
    assert {(k.rank, k.net, k.graph) for k in steps} == {(0, "Net", 0)}


def test_graph_nodes_inputs_and_source_lines(jit_nan_dump):
    dump = DumpDir(str(jit_nan_dump))
    graph = dump.graph(0, 0)
    log = next(n for n in graph.nodes.values() if n.op_type == "Log")
    assert log.full_name.endswith("Log-op0")
    assert log.inputs, "Log has an input edge"
    source = log.user_source()
    assert source is not None and source.path.endswith("nan_log.py")
    assert "ops.log(x)" in source.code
    assert graph.exec_index, "execution order was read"


def test_categories_and_parameter_names(jit_nan_dump):
    _, _, entries = _entries(jit_nan_dump)
    by_param = {(e.param, e.category) for e in entries if e.file.is_parameter}
    assert ("fc1.weight", "weight") in by_param
    assert ("moment1.fc1.weight", "optimizer_state") in by_param
    assert ("global_step", "optimizer_state") in by_param
    assert ("x", "input") in by_param
    gradients = {e.param for e in entries if e.category == "gradient"}
    assert gradients == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}
    activations = {e.op_type for e in entries if e.category == "activation"}
    assert {"MatMul", "Log", "ReLU"} <= activations


def test_gradient_tensor_matches_optimizer_input(jit_nan_dump):
    _, _, entries = _entries(jit_nan_dump)
    grad = next(e for e in entries if e.category == "gradient" and e.param == "fc2.weight" and e.io == "output")
    adam_input = next(e for e in entries if e.op_type == "Adam" and e.io == "input" and e.slot == 9
                      and e.graph_node.inputs[0] == "fc2.weight")
    np.testing.assert_array_equal(grad.load(), adam_input.load())


def test_model_train_dump_names_scopes(model_nan_dump):
    _, _, entries = _entries(model_nan_dump)
    names = {e.node for e in entries}
    assert any(n.startswith("Default/network-WithLossCell/_backbone-") for n in names)
    assert {e.param for e in entries if e.category == "gradient"} == {"fc.weight", "fc.bias"}
    assert ("moments.fc.weight", "optimizer_state") in {(e.param, e.category) for e in entries}


def test_small_tensors_are_read_and_large_ones_memory_mapped(jit_nan_dump, tmp_path):
    _, _, entries = _entries(jit_nan_dump)
    entry = next(e for e in entries if e.param == "fc1.weight" and e.category == "weight")
    array = entry.load()
    assert not isinstance(array, np.memmap) and array.shape == (8, 4) and array.dtype == np.float32
    assert not array.flags.writeable  # read-only, like a memory map
    np.testing.assert_array_equal(array, np.load(entry.path))
    large = np.arange(SMALL_FILE_BYTES // 4 + 1, dtype=np.float32).reshape(-1, 1)
    for name, values in (("c.npy", large), ("f.npy", np.asfortranarray(np.hstack([large, large])))):
        np.save(tmp_path / name, values)
        mapped = open_npy(str(tmp_path / name))
        assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
        np.testing.assert_array_equal(mapped, values)
    fortran_small = np.asfortranarray(np.arange(12, dtype=np.float64).reshape(3, 4))
    np.save(tmp_path / "fs.npy", fortran_small)
    np.testing.assert_array_equal(open_npy(str(tmp_path / "fs.npy")), fortran_small)


def test_truncated_npy_names_the_file(tmp_path):
    path = tmp_path / "t.npy"
    np.save(path, np.arange(1000, dtype=np.float32))
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(TensorFileError, match=r"t\.npy: truncated"):
        open_npy(str(path))


def test_garbage_npy_names_the_file(tmp_path):
    path = tmp_path / "g.npy"
    path.write_bytes(b"not numpy at all")
    with pytest.raises(TensorFileError, match=r"g\.npy: not a valid \.npy file"):
        open_npy(str(path))


def test_empty_and_scalar_tensors(tmp_path):
    np.save(tmp_path / "e.npy", np.zeros((0, 3), np.float16))
    np.save(tmp_path / "s.npy", np.float32(2.5))
    assert open_npy(str(tmp_path / "e.npy")).shape == (0, 3)
    assert float(open_npy(str(tmp_path / "s.npy"))) == 2.5


def test_missing_dump_dir():
    with pytest.raises(MsdbgError, match="does not exist"):
        DumpDir("/nonexistent/msdbg/dump")
