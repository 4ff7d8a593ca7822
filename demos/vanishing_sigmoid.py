"""Demo: a custom @ms.jit loop through 6 Sigmoid layers with tiny initial weights: early gradients vanish.

Planted cause (accuracy guide, "Common Causes" > weight initialization problems and "Common Tuning Suggestions" >
"Selection and Optimization of Initial Weight Values" / "of Activation Functions"; symptom "Gradient
disappearance" in "Common Symptoms" and "Checking the Loss Curve" > the loss convergence is slow): every hidden
layer is Dense(weight_init=Normal(0.01)) followed by Sigmoid. Backpropagation through one such layer multiplies
the gradient by about 0.01 * sqrt(8) (the weights) * 0.25 (the Sigmoid's slope at 0), so each layer further
from the loss gets a gradient about 100x smaller: the first layers receive almost nothing and do not learn,
and the loss barely moves.
Run it:  msdbg demo vanishing_sigmoid --batch
    (the same as: msdbg run --batch -x demos/vanishing_sigmoid.msdbg demos/vanishing_sigmoid.py)
"""

import numpy as np
import mindspore as ms
from mindspore import nn, ops
from mindspore.common.initializer import Normal

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(4)

DEPTH = 6


class DeepSigmoid(nn.Cell):
    def __init__(self):
        super().__init__()
        self.layers = nn.SequentialCell([nn.SequentialCell(nn.Dense(8, 8, weight_init=Normal(0.01)), nn.Sigmoid())
                                         for _ in range(DEPTH)])  # planted: tiny weights x Sigmoid, 6 deep
        self.head = nn.Dense(8, 1)

    def construct(self, x):
        return self.head(self.layers(x))


net = DeepSigmoid()
optimizer = nn.Adam(net.trainable_params(), learning_rate=1e-3)


def forward(x, y):
    return ops.mse_loss(net(x), y)


grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)


@ms.jit
def train_step(x, y):
    loss, grads = grad_fn(x, y)
    optimizer(grads)
    return loss


rng = np.random.default_rng(4)
x = rng.normal(size=(64, 8)).astype(np.float32)
y = np.tanh(x[:, :2].sum(axis=1, keepdims=True)).astype(np.float32)
for step in range(4):  # full-batch steps on the same 64 samples: the loss barely moves
    loss = train_step(ms.Tensor(x), ms.Tensor(y))
    print(f"step {step} loss {float(loss.asnumpy()):.4f}")
