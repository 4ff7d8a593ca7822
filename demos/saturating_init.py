"""Demo: a custom @ms.jit loop whose first layer starts with weights ~20x too large: its Tanh saturates at once.

Planted cause (accuracy guide, "Common Causes" > weight initialization problems; "Common Tuning Suggestions" >
"Selection and Optimization of Initial Weight Values"; symptom "the activation value is saturated" in "Checking
the Loss Curve"): fc1 reads 256 features and is built with weight_init=Normal(sigma=2.0), where He's scale is
sqrt(2/256) = 0.088. Its outputs then have a std of about 32 for standardised inputs, so over 90% of the Tanh's
outputs sit at -1 or 1 from the very first step, where its slope is ~0: fc1 barely learns. Plain saturation can
also come from unnormalised data or a large learning rate later on; here it is there before any update, and the
weight feeding the Tanh is far above the usual initial scale: the initialisation is the cause.
Run it:  msdbg demo saturating_init --batch
    (the same as: msdbg run --batch -x demos/saturating_init.msdbg demos/saturating_init.py)
"""

import numpy as np
import mindspore as ms
from mindspore import nn, ops
from mindspore.common.initializer import Normal

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(7)

FEATURES = 256


class Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(FEATURES, 32, weight_init=Normal(sigma=2.0))  # planted: sigma 2.0, He's is 0.088
        self.tanh = nn.Tanh()
        self.head = nn.Dense(32, 1)

    def construct(self, x):
        return self.head(self.tanh(self.fc1(x)))


net = Net()
optimizer = nn.Adam(net.trainable_params(), learning_rate=1e-3)


def forward(x, y):
    return ops.mse_loss(net(x), y)


grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)


@ms.jit
def train_step(x, y):
    loss, grads = grad_fn(x, y)
    optimizer(grads)
    return loss


rng = np.random.default_rng(7)
x = rng.normal(size=(64, FEATURES)).astype(np.float32)  # standardised features: the data is not the problem
y = np.tanh(x[:, :4].sum(axis=1, keepdims=True)).astype(np.float32)
for step in range(4):  # full-batch steps on the same 64 samples
    loss = train_step(ms.Tensor(x), ms.Tensor(y))
    print(f"step {step} loss {float(loss.asnumpy()):.4f}")
