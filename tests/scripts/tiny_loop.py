"""A tiny, fast custom @ms.jit training: argv[1] steps (default 300) of a 4->8->1 MLP on fixed data.

``--nan-at K``: at step K one input feature is 0, and the network's log(x) makes it -inf (a NaN loss there).
``--broadcast``: the loss subtracts labels of shape (N,) from predictions of shape (N, 1): a (N, N) difference.
Prints ``step N loss L`` per step.
"""

import sys

import numpy as np
import mindspore as ms
from mindspore import nn, ops

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(5)
args = sys.argv[1:]
steps = int(args[0]) if args and args[0].isdigit() else 300
nan_at = int(args[args.index("--nan-at") + 1]) if "--nan-at" in args else -1
broadcast = "--broadcast" in args


class Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(4, 8)
        self.relu = nn.ReLU()
        self.fc2 = nn.Dense(8, 1)

    def construct(self, x):
        return self.fc2(self.relu(self.fc1(ops.log(x))))


net = Net()
optimizer = nn.SGD(net.trainable_params(), learning_rate=0.05)


def forward(x, y):
    pred = net(x)
    if broadcast:
        return ((pred - y) ** 2).mean()  # pred (N, 1) - y (N,) -> (N, N): every prediction against every label
    return ops.mse_loss(pred, y)


grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)


@ms.jit
def train_step(x, y):
    loss, grads = grad_fn(x, y)
    optimizer(grads)
    return loss


rng = np.random.default_rng(5)
x = rng.uniform(0.5, 2.0, size=(16, 4)).astype(np.float32)
y = np.log(x[:, :1]) * 2.0 - np.log(x[:, 1:2])
y = (y[:, 0] if broadcast else y).astype(np.float32)
for step in range(steps):
    batch = x.copy()
    if step == nan_at:
        batch[3, 2] = 0.0
    loss = train_step(ms.Tensor(batch), ms.Tensor(y))
    print(f"step {step} loss {float(loss.asnumpy()):.6f}", flush=True)
