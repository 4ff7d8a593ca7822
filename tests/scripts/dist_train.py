"""Data-parallel training on 2 CPU ranks (launch with msrun). argv[1]: 'same' seeds every rank alike,
'different' gives each rank its own seed, so initial weights differ across ranks (the guide's classic bug)."""

import sys

import numpy as np
import mindspore as ms
from mindspore import nn, ops
from mindspore.communication import get_rank, init

ms.set_context(mode=ms.GRAPH_MODE)
init()
rank = get_rank()
ms.set_seed(1 if sys.argv[1] == "same" else 1 + rank)
ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True)
net = nn.SequentialCell(nn.Dense(4, 8), nn.ReLU(), nn.Dense(8, 1))
optimizer = nn.SGD(net.trainable_params(), 0.01)
reducer = nn.DistributedGradReducer(optimizer.parameters)


def forward(x, y):
    return ops.mse_loss(net(x), y)


grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)


@ms.jit
def train_step(x, y):
    loss, grads = grad_fn(x, y)
    optimizer(reducer(grads))
    return loss


for step in range(3):
    x = np.random.default_rng(100 * rank + step).normal(size=(8, 4)).astype(np.float32)
    print(f"rank {rank} step {step} loss {float(train_step(ms.Tensor(x), ms.Tensor(x[:, :1])).asnumpy()):.4f}")
