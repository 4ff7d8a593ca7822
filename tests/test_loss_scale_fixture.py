"""Loss scaling with TrainOneStepWithLossScaleCell / DynamicLossScaleManager, which do not run on CPU.

A FIXTURE following MindSpore's documented e2e dump layout (file names
``{op_type}.{op_name}.{task}.{stream}.{timestamp}.{input|output}.{slot}.{format}.{dtype}.npy``), not a real dump:
an Ascend-style step of TrainOneStepWithLossScaleCell holds the ``NPUGetFloatStatusV2`` overflow status, float16
backward kernels under ``Gradients/``, and ``Parameter.scale_sense`` (its scale after the step, lowered by
``DynamicLossScaleUpdateCell`` on overflow). No graph files: placement is by file name only.
"""

import json

import numpy as np

from conftest import run_msdbg

SCALES = [65536.0, 32768.0, 16384.0, 16384.0]  # after steps 0..3: steps 1 and 2 overflowed


def _write(folder, op_type, op_name, stamp, array, dtype):
    np.save(folder / f"{op_type}.{op_name}.0.0.{stamp}.output.0.DefaultFormat.{dtype}.npy", array)


def _fixture(root):
    for step, scale in enumerate(SCALES):
        folder = root / "rank_0" / "Net" / "0" / str(step)
        folder.mkdir(parents=True)
        stamp = 1000 * (step + 1)
        overflow = step in (1, 2)
        forward = np.array([0.5, -1.0, np.inf if step == 2 else 2.0], np.float16)  # a real forward overflow
        gradient = np.array([np.inf if overflow else 0.1, -0.2], np.float16)
        _write(folder, "MatMul", "Default_network-WithLossCell__backbone-Net_fc-Dense_MatMul-op0", stamp, forward,
               "Float16")
        _write(folder, "MatMul", "Gradients_Default_network-WithLossCell__backbone-Net_Grad_MatMul_MatMul-op1",
               stamp + 1, gradient, "Float16")
        _write(folder, "NPUGetFloatStatusV2", "Default_NPUGetFloatStatusV2-op0", stamp + 2,
               np.array([int(overflow)] * 8, np.int32), "Int32")
        _write(folder, "Parameter", "scale_sense", stamp + 3, np.array(scale, np.float32), "Float32")
    return root


def test_scale_sense_going_down_is_a_skipped_step_not_overflow_hits(tmp_path):
    dump = _fixture(tmp_path / "dump")
    out = tmp_path / "report.json"
    done = run_msdbg("check", str(dump), "--nx", "-c", "watch tensor_overflow", "-c",
                     "watch loss_scale_improper consecutive_skips_ge=2", "--json", str(out))
    report = json.loads(out.read_text())
    assert [(s["step"], s["scale_before"], s["scale_after"]) for s in report["loss_scale_skips"]] == [
        (1, 65536.0, 32768.0), (2, 32768.0, 16384.0)]
    assert "step 1 skipped by loss scaling (scale 65536 -> 32768)" in done.stdout
    overflow = [(h["step"], h["node"]) for h in report["hits"] if h["condition"] == "tensor_overflow"]
    assert overflow == [(2, "Default_network-WithLossCell__backbone-Net_fc-Dense_MatMul-op0")], \
        "the backward overflow of skipped steps is expected; the forward one is still a hit"
    improper = [h for h in report["hits"] if h["condition"] == "loss_scale_improper"]
    assert [(h["step"], h["param"]) for h in improper] == [(2, "scale_sense")]
    assert improper[0]["reasons"] == ["the scale fell at 2 steps in a row (now 16384)"]
    assert done.returncode == 1
