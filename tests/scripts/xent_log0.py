"""A hand-written cross entropy -(onehot * log(p)) whose p is exactly 0 at step 2: Log gives -inf.

The logits feed both the softmax and a second use, so gradients pass a backward AddN (a kernel MindSpore
creates after the traced graph; its dump name and its graph name differ). argv[1]: "jit" (a custom @ms.jit
loop, default) or "model" (Model.train).
"""

import numpy as np
import mindspore as ms
from mindspore import nn, ops
from train_styles import style_from_argv, train

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(0)
STEPS, BAD_STEP = 3, 2


class Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(4, 8)
        self.fc2 = nn.Dense(8, 3)

    def construct(self, x):
        h = self.fc1(x)
        h = ops.relu(h) + h * 0.1  # h used twice: its gradient is an AddN
        return self.fc2(h)


class HandXent(nn.Cell):
    def construct(self, logits, onehot):
        p = ops.softmax(logits, axis=-1)  # exactly 0 where a logit is far below the row's largest
        return -(onehot * ops.log(p)).sum(axis=-1).mean()


def batch(step):
    rng = np.random.default_rng(step)
    x = rng.uniform(-1.0, 1.0, size=(4, 4)).astype(np.float32)
    if step == BAD_STEP:
        x[1] = 1e5  # logits of this row differ by thousands: softmax underflows to exactly 0
    onehot = np.eye(3, dtype=np.float32)[rng.integers(0, 3, size=4)]
    return x, onehot


net = Net()
loss_fn = HandXent()
optimizer = nn.SGD(net.trainable_params(), learning_rate=0.01)

train(net, loss_fn, optimizer, batch, STEPS, style_from_argv())
