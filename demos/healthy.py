"""Demo: a healthy custom @ms.jit training: the recommended watchpoints stay silent.

Nothing is planted: standardised inputs, default (random) initialisation, a ReLU hidden layer, Adam at lr=5e-2,
labels on the same scale as the inputs. It is the baseline for the other demos (accuracy guide, "Checking the
Loss Curve": a loss that falls steadily with no NaN, no huge values and weights that all move). Use it to see
what a clean run looks like: `msdbg: 0 hits`, exit code 0, and an empty diagnosis.
Run it:  msdbg demo healthy --batch
    (the same as: msdbg run --batch -x demos/healthy.msdbg demos/healthy.py)
"""

import numpy as np
import mindspore as ms
from mindspore import nn, ops

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(11)


class Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(4, 16)
        self.relu = nn.ReLU()
        self.fc2 = nn.Dense(16, 1)

    def construct(self, x):
        return self.fc2(self.relu(self.fc1(x)))


net = Net()
optimizer = nn.Adam(net.trainable_params(), learning_rate=5e-2)


def forward(x, y):
    return ops.mse_loss(net(x), y)


grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)


@ms.jit
def train_step(x, y):
    loss, grads = grad_fn(x, y)
    optimizer(grads)
    return loss


rng = np.random.default_rng(11)
x = rng.normal(size=(64, 4)).astype(np.float32)
y = (x[:, :1] * 2.0 - x[:, 1:2] + 1.0).astype(np.float32)
for step in range(8):  # full-batch steps on the same 64 samples
    loss = train_step(ms.Tensor(x), ms.Tensor(y))
    print(f"step {step} loss {float(loss.asnumpy()):.4f}")
