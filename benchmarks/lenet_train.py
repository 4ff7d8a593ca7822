"""A LeNet-5-size convnet trained on synthetic data (CPU, graph mode, custom @ms.jit loop).

    python benchmarks/lenet_train.py [STEPS] [BATCH] [pynative]      (defaults: 120 steps, batch 32)

With ``pynative`` the same loop runs in MindSpore's default PyNative mode: no set_context, no @ms.jit.

Used by benchmarks/overhead.py, which runs it plain and under ``msdbg run --batch``. Prints one line per step,
``step N t=SECONDS loss=VALUE``, where t is time.perf_counter() right after the step's loss is on the host, so
the benchmark can take per-step times from both runs; the last line is ``done t=SECONDS``.
"""

import sys
import time

import numpy as np
import mindspore as ms
from mindspore import nn

STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 120
BATCH = int(sys.argv[2]) if len(sys.argv) > 2 else 32
PYNATIVE = sys.argv[3:4] == ["pynative"]
if not PYNATIVE:
    ms.set_context(mode=ms.GRAPH_MODE)
ms.set_device("CPU")
ms.set_seed(0)


class LeNet5(nn.Cell):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, pad_mode="valid")
        self.conv2 = nn.Conv2d(6, 16, 5, pad_mode="valid")
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Dense(16 * 5 * 5, 120)
        self.fc2 = nn.Dense(120, 84)
        self.fc3 = nn.Dense(84, num_classes)

    def construct(self, x):
        x = self.pool(self.relu(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        x = self.flatten(x)
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        return self.fc3(x)


net = LeNet5()
loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
optimizer = nn.Momentum(net.trainable_params(), learning_rate=0.01, momentum=0.9)


def forward(x, y):
    return loss_fn(net(x), y)


grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)


def train_step(x, y):
    loss, grads = grad_fn(x, y)
    optimizer(grads)
    return loss


if not PYNATIVE:
    train_step = ms.jit(train_step)


# Synthetic MNIST-like data: 8 distinct batches, reused round-robin (generation stays out of the step time).
rng = np.random.default_rng(0)
data = [(ms.Tensor(rng.normal(size=(BATCH, 1, 32, 32)).astype(np.float32)),
         ms.Tensor(rng.integers(0, 10, size=(BATCH,)).astype(np.int32))) for _ in range(8)]

start = time.perf_counter()
print(f"start t={start:.6f}", flush=True)
for step in range(STEPS):
    x, y = data[step % len(data)]
    loss = train_step(x, y)
    value = float(loss.asnumpy())
    print(f"step {step} t={time.perf_counter():.6f} loss={value:.4f}", flush=True)
print(f"done t={time.perf_counter():.6f}", flush=True)
