"""Train a small net for 3 steps (custom @ms.jit loop, layer 0 all-zero, layer 2 frozen) and print which sides of its kernels the dump
holds: ``sides inputs=N outputs=M`` for the step folders on disk after the last step."""

import json
import os

import numpy as np
import mindspore as ms
from mindspore import nn, ops

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(3)
net = nn.SequentialCell(nn.Dense(4, 8, weight_init="zeros"), nn.ReLU(), nn.Dense(8, 1))
optimizer = nn.SGD(net[0].trainable_params(), learning_rate=0.01)  # layer 2 is frozen


def forward(x, y):
    return ops.mse_loss(net(x), y)


grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)


@ms.jit
def train_step(x, y):
    loss, grads = grad_fn(x, y)
    optimizer(grads)
    return loss


rng = np.random.default_rng(3)
for step in range(3):
    x = rng.normal(size=(8, 4)).astype(np.float32)
    train_step(ms.Tensor(x), ms.Tensor(x[:, :1])).asnumpy()
with open(os.environ["MINDSPORE_DUMP_CONFIG"], encoding="utf-8") as handle:
    root = json.load(handle)["common_dump_settings"]["path"]
names = [name for folder, _, files in os.walk(root, followlinks=True) for name in files if name.endswith(".npy")]
print(f"sides inputs={sum('.input.' in n for n in names)} outputs={sum('.output.' in n for n in names)}")
