"""A wide MLP trained for a few steps on CPU, to be run with MindSpore's own dump on (MINDSPORE_DUMP_CONFIG).

    python benchmarks/wide_mlp_dump.py [STEPS] [WIDTH] [LAYERS] [BATCH]     (defaults: 2 4096 4 64)

Big square Dense layers make big tensors: each WIDTH x WIDTH float32 weight is dumped as the parameter, as the
input of the kernels that read it, as its gradient and in the optimizer's inputs and outputs (input_output 0),
so one step writes about 1.15 GB per 4096-wide layer (measured with MindSpore 2.10 on CPU). Used by
benchmarks/scan_throughput.py.
"""

import sys

import numpy as np
import mindspore as ms
from mindspore import nn

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_device("CPU")
ms.set_seed(0)

STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 2
WIDTH = int(sys.argv[2]) if len(sys.argv) > 2 else 4096
LAYERS = int(sys.argv[3]) if len(sys.argv) > 3 else 4
BATCH = int(sys.argv[4]) if len(sys.argv) > 4 else 64


class WideMLP(nn.Cell):
    def __init__(self):
        super().__init__()
        self.layers = nn.CellList([nn.Dense(WIDTH, WIDTH, weight_init="normal") for _ in range(LAYERS)])
        self.head = nn.Dense(WIDTH, 10)
        self.relu = nn.ReLU()

    def construct(self, x):
        for layer in self.layers:
            x = self.relu(layer(x))
        return self.head(x)


net = WideMLP()
loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
optimizer = nn.Momentum(net.trainable_params(), learning_rate=1e-3, momentum=0.9)


def forward(x, y):
    return loss_fn(net(x), y)


grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)


@ms.jit
def train_step(x, y):
    loss, grads = grad_fn(x, y)
    optimizer(grads)
    return loss


rng = np.random.default_rng(0)
for step in range(STEPS):
    x = ms.Tensor(rng.normal(size=(BATCH, WIDTH)).astype(np.float32))
    y = ms.Tensor(rng.integers(0, 10, size=(BATCH,)).astype(np.int32))
    print(f"step {step} loss {float(train_step(x, y).asnumpy()):.4f}", flush=True)
