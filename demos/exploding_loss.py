"""Demo: a warm-up that climbs to a learning rate too high: the loss falls, then grows 2x a step without overflowing.

Planted cause (accuracy guide, "Common Causes" > hyperparameter problems: "the learning rate is set improperly
(too high)"; "Checking the Loss Curve" > an abnormal loss value: "the loss value is extremely large"): a linear
regression on standardised features trained with SGD, whose learning rate warms up linearly from 0.1 to 1.2 over
the first 12 steps. For this loss (mean squared error, curvature 2) every rate above 1 overshoots the minimum
by more than it corrects: once the warm-up passes 1 the loss, near its floor by then, grows again, about 2x a
step at 1.2. It stays finite for the whole run (no NaN, no Inf), so no overflow watchpoint fires; msdbg's
diagnosis reads the loss of every step from the flight recording and reports it exploding, with the step.
Run it:  msdbg demo exploding_loss --batch
    (the same as: msdbg run --batch -x demos/exploding_loss.msdbg demos/exploding_loss.py)
"""

import numpy as np
import mindspore as ms
from mindspore import nn, ops

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(12)

STEPS, WARMUP = 36, 12
net = nn.Dense(4, 1)
schedule = [0.1 + (1.2 - 0.1) * min(step, WARMUP) / WARMUP for step in range(STEPS)]  # planted: the peak 1.2 > 1
optimizer = nn.SGD(net.trainable_params(), learning_rate=schedule)


def forward(x, y):
    return ops.mse_loss(net(x), y)


grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)


@ms.jit
def train_step(x, y):
    loss, grads = grad_fn(x, y)
    optimizer(grads)
    return loss


rng = np.random.default_rng(12)
true_w = rng.normal(size=(4, 1))
for step in range(STEPS):
    x = rng.normal(size=(256, 4))
    x = (x - x.mean(axis=0)) / x.std(axis=0)  # standardised features: the curvature of the loss is 2
    y = x @ true_w + 0.5 + rng.normal(scale=0.1, size=(256, 1))
    loss = train_step(ms.Tensor(x, ms.float32), ms.Tensor(y, ms.float32))
    print(f"step {step} loss {float(loss.asnumpy()):.4g}")
