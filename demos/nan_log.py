"""Demo: a custom @ms.jit training loop whose loss turns NaN at step 3.

Planted cause (accuracy guide, "The API computation results include NaN and INF"): the model takes
log() of a feature; one batch has that feature at 0, so Log gives -inf and the loss becomes NaN.
Find it with:  msdbg run --batch -c "watch tensor_overflow" demos/nan_log.py
"""

import numpy as np
import mindspore as ms
from mindspore import nn, ops

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(0)


class LogFeatureNet(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(4, 8)
        self.fc2 = nn.Dense(8, 1)

    def construct(self, x):
        features = ops.log(x)  # log of raw positive features: -inf where a feature is 0
        return self.fc2(ops.relu(self.fc1(features)))


net = LogFeatureNet()
optimizer = nn.Adam(net.trainable_params(), learning_rate=1e-2)


def forward(x, y):
    return ops.mse_loss(net(x), y)


grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)


@ms.jit
def train_step(x, y):
    loss, grads = grad_fn(x, y)
    optimizer(grads)
    return loss


rng = np.random.default_rng(0)
for step in range(6):
    x = rng.uniform(0.5, 2.0, size=(16, 4)).astype(np.float32)
    if step == 3:
        x[5, 2] = 0.0  # a missing measurement recorded as 0
    y = x.sum(axis=1, keepdims=True).astype(np.float32)
    loss = train_step(ms.Tensor(x), ms.Tensor(y))
    print(f"step {step} loss {float(loss.asnumpy()):.4f}")
