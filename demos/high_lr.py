"""Demo: a custom @ms.jit loop with SGD at learning rate 10: the loss grows each step, then overflows.

Planted cause (accuracy guide, "Common Causes" > hyperparameter problems: "the learning rate is set improperly
(too high)"; "Checking the Loss Curve" > an abnormal loss value, item 3.(3): watch "Weight change above
threshold" and "Gradient above threshold"): a small regression net trained with plain SGD and lr=10. Each step
overshoots the minimum, so every weight update is larger than the weight itself, the gradients grow
geometrically and a few steps later the values overflow float32 (inf, then NaN). The weight-change and
gradient watchpoints hit steps before the first Inf, which points at the update size, not at an op.
Run it:  msdbg demo high_lr --batch
    (the same as: msdbg run --batch -x demos/high_lr.msdbg demos/high_lr.py)
"""

import numpy as np
import mindspore as ms
from mindspore import nn, ops

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(3)



class Regressor(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(8, 16)
        self.relu = nn.ReLU()
        self.fc2 = nn.Dense(16, 1)

    def construct(self, x):
        return self.fc2(self.relu(self.fc1(x)))


net = Regressor()
optimizer = nn.SGD(net.trainable_params(), learning_rate=10.0)  # planted: 100-1000x too high for SGD here


def forward(x, y):
    return ops.mse_loss(net(x), y)


grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)


@ms.jit
def train_step(x, y):
    loss, grads = grad_fn(x, y)
    optimizer(grads)
    return loss


rng = np.random.default_rng(3)
true_w = rng.normal(size=(8, 1)).astype(np.float32)
for step in range(8):
    x = rng.normal(size=(32, 8)).astype(np.float32)
    y = x @ true_w + 0.5
    loss = train_step(ms.Tensor(x), ms.Tensor(y))
    print(f"step {step} loss {float(loss.asnumpy()):.4g}")
