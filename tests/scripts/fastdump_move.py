"""A custom @ms.jit loop whose input has a NaN from step 4 on; run under ``msdbg run`` with a fast dump folder.

After step 1 it makes msdbg's free-space probe report a full fast file system, so the dump must move to disk at
the next step boundary. Prints where the dump's rank folder resolves to at each step.
"""

import json
import os

import numpy as np
import mindspore as ms
from mindspore import nn, ops

from msdbg.capture import fastdump

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(3)
net = nn.Dense(4, 1)
optimizer = nn.SGD(net.trainable_params(), learning_rate=0.01)


def forward(x, y):
    return ops.mse_loss(ops.log(net(x) * 0 + x[:, :1]), y)


grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)


@ms.jit
def train_step(x, y):
    loss, grads = grad_fn(x, y)
    optimizer(grads)
    return loss


with open(os.environ["MINDSPORE_DUMP_CONFIG"], encoding="utf-8") as handle:
    rank_dir = os.path.join(json.load(handle)["common_dump_settings"]["path"], "rank_0")
rng = np.random.default_rng(3)
for step in range(7):
    x = rng.uniform(0.5, 1.0, size=(8, 4)).astype(np.float32)
    if step >= 4:
        x[2, 0] = -1.0  # log(-1) = NaN
    train_step(ms.Tensor(x), ms.Tensor(x[:, 1:2])).asnumpy()
    print(f"step {step} rank folder {os.path.realpath(rank_dir)}", flush=True)
    if step == 1:
        fastdump.free_bytes = lambda path: 0
