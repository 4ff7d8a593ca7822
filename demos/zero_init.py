"""Demo: a custom @ms.jit loop where one layer's weights are initialised to all zeros.

Planted cause (accuracy guide, "Common Causes" > weight initialization problems, item 1: "the initial values of
all weights are 0 ... the weights should be initialized with random values"; "Checking the Loss Curve" item 1;
"Common Tuning Suggestions" > "Selection and Optimization of Initial Weight Values"): fc1 is built with
weight_init="zeros" (copied from its bias_init). fc1 then outputs exactly 0 for every input, the ReLU after it
outputs 0 with a gradient of 0, so fc1.weight, fc1.bias and fc2.weight all get zero gradients and never move:
only fc2.bias learns (the mean of the labels) and the loss hardly falls. A dead ReLU and vanishing gradients are
what shows during training; the all-zero initial weight is their root cause.
Run it:  msdbg demo zero_init --batch
    (the same as: msdbg run --batch -x demos/zero_init.msdbg demos/zero_init.py)
"""

import numpy as np
import mindspore as ms
from mindspore import nn, ops

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(7)


class Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(8, 16, weight_init="zeros", bias_init="zeros")  # planted: weight_init="zeros"
        self.relu = nn.ReLU()
        self.fc2 = nn.Dense(16, 1)

    def construct(self, x):
        return self.fc2(self.relu(self.fc1(x)))


net = Net()
optimizer = nn.Adam(net.trainable_params(), learning_rate=1e-2)


def forward(x, y):
    return ops.mse_loss(net(x), y)


grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)


@ms.jit
def train_step(x, y):
    loss, grads = grad_fn(x, y)
    optimizer(grads)
    return loss


rng = np.random.default_rng(7)
x = rng.normal(size=(64, 8)).astype(np.float32)
y = np.abs(x[:, :2]).sum(axis=1, keepdims=True).astype(np.float32)
for step in range(4):  # full-batch steps on the same 64 samples
    loss = train_step(ms.Tensor(x), ms.Tensor(y))
    print(f"step {step} loss {float(loss.asnumpy()):.4f}")
