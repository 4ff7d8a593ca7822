"""A healthy custom @ms.jit loop of argv[1] steps (default 2000) with no pause between steps."""

import sys

import numpy as np
import mindspore as ms
from mindspore import nn, ops

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(3)
net = nn.Dense(4, 1)
optimizer = nn.SGD(net.trainable_params(), learning_rate=0.01)


def forward(x, y):
    return ops.mse_loss(net(x), y)


grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)


@ms.jit
def train_step(x, y):
    loss, grads = grad_fn(x, y)
    optimizer(grads)
    return loss


x = ms.Tensor(np.random.default_rng(3).normal(size=(8, 4)).astype(np.float32))
for step in range(int(sys.argv[1]) if len(sys.argv) > 1 else 2000):
    loss = train_step(x, x[:, :1])
print(f"loop finished, loss {float(loss.asnumpy()):.4f}", flush=True)
