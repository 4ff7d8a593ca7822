"""The dump file-name parser, on names MindSpore 2.10 wrote on CPU and on documented GPU/Ascend forms."""

import pytest

from msdbg.store.filenames import dump_op_name, dump_param_name, parse_tensor_filename


def test_parses_op_file_written_on_cpu():
    name = "MatMul.Default_network-WithLossCell__backbone-Net_fc1-Dense_MatMul-op0.0.0.1795460758121891.input.1.DefaultFormat.Float32.npy"
    parsed = parse_tensor_filename(name)
    assert parsed.op_type == "MatMul"
    assert parsed.op_name == "Default_network-WithLossCell__backbone-Net_fc1-Dense_MatMul-op0"
    assert (parsed.task_id, parsed.stream_id, parsed.timestamp) == (0, 0, 1795460758121891)
    assert (parsed.io, parsed.slot, parsed.format, parsed.dtype) == ("input", 1, "DefaultFormat", "Float32")
    assert not parsed.is_parameter


def test_op_name_with_dots_is_kept_whole():
    parsed = parse_tensor_filename("Add.Default_net.v2_block.1_Add-op3.12.3.99.output.0.NCHW.Float16.npy")
    assert parsed.op_type == "Add"
    assert parsed.op_name == "Default_net.v2_block.1_Add-op3"
    assert (parsed.task_id, parsed.stream_id, parsed.slot, parsed.format, parsed.dtype) == (12, 3, 0, "NCHW", "Float16")


def test_parameter_file():
    parsed = parse_tensor_filename("Parameter.moment1_fc1_weight.0.0.1795460694127931.output.0.DefaultFormat.Float32.npy")
    assert parsed.is_parameter and parsed.op_name == "moment1_fc1_weight"


@pytest.mark.parametrize("name", [
    "statistic.csv", "MatMul.npy", "MatMul.op.0.0.1.sideways.0.Default.Float32.npy",
    "MatMul.op.0.0.1.output.x.Default.Float32.npy", ".0.0.1.output.0.Default.Float32.npy",
    "MatMul.op.0.0.1.output.0.Default.Float32.npy.tmp",
])
def test_rejects_other_files(name):
    assert parse_tensor_filename(name) is None


def test_names_as_mindspore_writes_them():
    assert dump_op_name("Default/network-WithLossCell/_backbone-Net/Log-op0") == "Default_network-WithLossCell__backbone-Net_Log-op0"
    assert dump_param_name("moment1.fc1.weight") == "moment1_fc1_weight"
