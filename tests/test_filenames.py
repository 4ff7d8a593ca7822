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
    "MatMul.op.0.0.1.output.0.Default.Float32.npy.tmp", "MatMul.op.\u0663.0.1.output.0.Default.Float32.npy",
    "MatMul.op.0.0.1.output.\u00b2.Default.npy", "MatMul.op.0..1.output.0.Default.Float32.npy",
    "MatMul.op.0.0.1.output.0..Float32.npy", "MatMul.0.0.1.output.0.Default.Float32.npy",
    "MatMul.op.0.0.1.output.0.Default.npy\n", "MatMul.op.0.0.1.output.0.Default.Float32.npy\n",
])
def test_rejects_other_files(name):
    assert parse_tensor_filename(name) is None


def test_a_name_without_dtype_field_mindspore_2_0():
    parsed = parse_tensor_filename("MatMul.Default_fc1_MatMul-op0.0.0.17.output.1.DefaultFormat.npy")
    assert (parsed.op_name, parsed.timestamp, parsed.slot, parsed.format, parsed.dtype) == (
        "Default_fc1_MatMul-op0", 17, 1, "DefaultFormat", "")


def test_an_op_name_holding_the_tail_fields_is_read_from_the_end():
    parsed = parse_tensor_filename("Add.a.1.2.3.output.4.5.6.7.input.8.NCHW.Float32.npy")
    assert (parsed.op_type, parsed.op_name, parsed.task_id, parsed.stream_id, parsed.timestamp, parsed.io,
            parsed.slot, parsed.format, parsed.dtype) == ("Add", "a.1.2.3.output.4", 5, 6, 7, "input", 8, "NCHW",
                                                          "Float32")


def test_names_as_mindspore_writes_them():
    assert dump_op_name("Default/network-WithLossCell/_backbone-Net/Log-op0") == "Default_network-WithLossCell__backbone-Net_Log-op0"
    assert dump_param_name("moment1.fc1.weight") == "moment1_fc1_weight"
