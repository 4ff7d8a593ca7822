"""Demo: Model.train where a ReLU layer is dead from the start: a bias of -50 makes it output only zeros.

Planted cause (accuracy guide, "Checking the Loss Curve" item 6: "the activation value is saturated or too weak
(... the output of ReLU is all 0s)"; "Common Causes": "the relu activation function is used, and all input values
are less than 0"): fc1's bias is initialised to -50 while its pre-activations x @ W are of order 1, so every
input of the ReLU is negative and its output is all 0. The ReLU's gradient is then 0 too: fc1 gets zero
gradients and never learns, fc2 only sees zeros and can fit nothing but the mean of the labels.
Run it:  msdbg demo dead_relu --batch
    (the same as: msdbg run --batch -x demos/dead_relu.msdbg demos/dead_relu.py)
"""

import numpy as np
import mindspore as ms
import mindspore.dataset as ds
from mindspore import nn
from mindspore.train import Callback, Model

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(5)


class Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(8, 16, bias_init=ms.Tensor(np.full(16, -50.0, np.float32)))  # planted: bias -50
        self.relu = nn.ReLU()
        self.fc2 = nn.Dense(16, 1)

    def construct(self, x):
        return self.fc2(self.relu(self.fc1(x)))


def batches():
    rng = np.random.default_rng(5)
    for _ in range(5):
        x = rng.normal(size=(16, 8)).astype(np.float32)
        yield x, x[:, :1] * 0.5 + 0.1


class PrintLoss(Callback):
    def on_train_step_end(self, run_context):
        cb = run_context.original_args()
        print(f"step {cb.cur_step_num - 1} loss {float(cb.net_outputs.asnumpy()):.4f}")


net = Net()
model = Model(net, nn.MSELoss(), nn.Momentum(net.trainable_params(), 0.05, 0.9))
model.train(1, ds.GeneratorDataset(batches, ["x", "y"], shuffle=False), callbacks=[PrintLoss()],
            dataset_sink_mode=False)
