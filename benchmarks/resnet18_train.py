"""mindcv's resnet18 (10 classes) on synthetic 32x32 images, custom @ms.jit loop (CPU, graph mode).

    python benchmarks/resnet18_train.py [STEPS] [BATCH]      (defaults: 2 steps, batch 2)

Used by benchmarks/recorder.py for a resnet18-size graph (needs mindcv 0.3.0: pip install --no-deps mindcv==0.3.0).
"""

import sys

import numpy as np
import mindspore as ms
from mindspore import nn
from mindcv.models import create_model

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_device("CPU")
ms.set_seed(0)
STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 2
BATCH = int(sys.argv[2]) if len(sys.argv) > 2 else 2

net = create_model("resnet18", num_classes=10)
loss_fn = nn.CrossEntropyLoss()
optimizer = nn.Momentum(net.trainable_params(), learning_rate=0.01, momentum=0.9)


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
    x = ms.Tensor(rng.normal(size=(BATCH, 3, 32, 32)).astype(np.float32))
    y = ms.Tensor(rng.integers(0, 10, size=(BATCH,)).astype(np.int32))
    print(f"step {step} loss {float(train_step(x, y).asnumpy()):.6f}", flush=True)
