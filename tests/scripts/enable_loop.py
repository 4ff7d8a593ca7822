"""A healthy @ms.jit loop that calls msdbg.enable() itself (no msdbg run), then trains argv[1] steps slowly."""

import sys
import time

import msdbg

msdbg.enable()

import numpy as np  # noqa: E402
import mindspore as ms  # noqa: E402
from mindspore import nn, ops  # noqa: E402

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


rng = np.random.default_rng(3)
for step in range(int(sys.argv[1])):
    x = rng.normal(size=(8, 4)).astype(np.float32)
    print(f"step {step} loss {float(train_step(ms.Tensor(x), ms.Tensor(x[:, :1])).asnumpy()):.4f}", flush=True)
    time.sleep(0.1)
print("loop finished")
