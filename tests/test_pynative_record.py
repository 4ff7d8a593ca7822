"""PyNative recording in this process: what a real PyNative step records, and that uninstalling restores MindSpore."""

import numpy as np
import pytest

ms = pytest.importorskip("mindspore")
from mindspore import nn, ops  # noqa: E402

from msdbg.capture import pynative  # noqa: E402
from msdbg.store.pynative import PyNativeSteps  # noqa: E402


class _Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(3, 4)

    def construct(self, x):
        return ops.relu(self.fc1(ops.log(x))) * 2


def _train(steps: int, optimizer_kind: str) -> tuple[PyNativeSteps, list[int]]:
    ms.set_seed(0)
    net = _Net()
    params = net.trainable_params()
    optimizer = nn.Momentum(params, 0.01, 0.9) if optimizer_kind == "momentum" else None
    grad_fn = ms.value_and_grad(lambda x: net(x).sum(), None, params)
    source = PyNativeSteps(keep=2)
    ends: list[int] = []
    recorder = pynative.PyNativeRecorder(source, lambda: ends.append(source.recorded))
    uninstall = pynative.install(recorder)
    try:
        for _ in range(steps):
            _, grads = grad_fn(ms.Tensor(np.full((2, 3), 2.0, np.float32)))
            if optimizer is not None:
                optimizer(grads)
            else:
                for param, grad in zip(params, grads):
                    ops.assign_sub(param, grad * ms.Tensor(0.1, ms.float32))
        recorder.close_step()
    finally:
        uninstall()
    return source, ends


@pytest.mark.parametrize("optimizer_kind", ["momentum", "manual"])
def test_a_step_records_calls_gradients_and_parameters(optimizer_kind):
    source, ends = _train(3, optimizer_kind)
    assert ends == [1, 2, 3], "one barrier per step"
    assert len(source.steps()) == 2, "only --keep-steps steps stay in memory"
    key = source.steps()[-1]
    entries = {e.node: e for e in source.tensors(key)}
    log = entries["Default/_Net/Log-op0"]
    assert log.op_type == "Log" and log.category == "activation"
    assert log.graph_node.user_source().code.strip().startswith("return ops.relu(self.fc1(ops.log(x))) * 2")
    assert entries["Default/_Net/fc1-Dense-op0"].op_type == "Dense"
    assert {e.param for e in entries.values() if e.category == "gradient"} == {"fc1.weight", "fc1.bias"}
    assert entries["fc1.weight"].category == "weight" and entries["fc1.weight"].file.is_parameter
    if optimizer_kind == "momentum":
        assert entries["moments.fc1.weight"].category == "optimizer_state"
    graph = source.graph_of(key)
    assert "Default/_Net/Log-op0" in graph.ancestors("Default/_Net-op0"), "a Cell's output depends on its last call"
    assert "Gradients/fc1.weight" in graph.ancestors("fc1.weight"), "a parameter depends on its gradient"
    assert "Default/_Net/Log-op0" in graph.ancestors("Gradients/fc1.weight"), "a gradient depends on the loss"
    weight = entries["fc1.weight"].load()
    assert weight.shape == (4, 3) and not weight.flags.writeable


def test_uninstall_restores_every_wrapped_entry_point():
    before = (ops.log, ms.Tensor.__mul__, nn.Cell.__call__, ms.Tensor.__dict__.get("sum"))
    _train(1, "manual")
    assert (ops.log, ms.Tensor.__mul__, nn.Cell.__call__, ms.Tensor.__dict__.get("sum")) == before


def test_graph_mode_and_other_threads_are_not_recorded():
    source = PyNativeSteps(keep=2)
    recorder = pynative.PyNativeRecorder(source, lambda: None)
    recorder.thread = -1  # as if installed by another thread
    uninstall = pynative.install(recorder)
    try:
        ops.log(ms.Tensor(np.ones(2, np.float32)))
    finally:
        uninstall()
    assert recorder.calls == []
