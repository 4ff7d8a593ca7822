"""A tiny custom @ms.jit loop run under ``msdbg run`` that counts the dump listings (``DumpDir.steps``) msdbg makes
on the training's thread; prints ``listings N after K steps`` after each step (each step is one barrier)."""

import threading

import numpy as np
import mindspore as ms
from mindspore import nn, ops

from msdbg.store.dumpdir import DumpDir

listings = [0]
steps = DumpDir.steps


def counted(self):
    if threading.current_thread() is threading.main_thread():
        listings[0] += 1
    return steps(self)


DumpDir.steps = counted
ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(2)
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


x, y = ms.Tensor(np.ones((8, 4), np.float32)), ms.Tensor(np.zeros((8, 1), np.float32))
for step in range(1, 7):
    train_step(x, y)
    print(f"listings {listings[0]} after {step} steps", flush=True)
