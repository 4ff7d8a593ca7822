"""Demo: a custom @ms.jit loop where every Dense layer is initialised to the constant 0.1: symmetry is not broken.

Planted cause (accuracy guide, "Common Tuning Suggestions" > "Selection and Optimization of Initial Weight Values":
"when the weights are initialized to a unified constant (for example, 0 or 1), all neurons learn the same
features (with the same gradient)"): fc1, fc2 and the head are built with weight_init=Constant(0.1), the hidden
layers' biases with bias_init="zeros". The 16 units of fc1 then compute the same function of the input, as do
the 16 units of fc2; each unit gets the same gradient as its neighbours, so the units stay identical at every
step (the script prints it at the end) and each hidden layer works as one unit, however wide it is. Nothing is
NaN, zero or out of range: only the weights' content shows it, at the first step. (With MindSpore's default
random biases the units would drift apart only through their bias offsets: still the constant initialisation
the guide advises against, and still reported.)
Run it:  msdbg demo constant_init --batch
    (the same as: msdbg run --batch -x demos/constant_init.msdbg demos/constant_init.py)
"""

import numpy as np
import mindspore as ms
from mindspore import nn, ops
from mindspore.common.initializer import Constant

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(7)


class Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(8, 16, weight_init=Constant(0.1), bias_init="zeros")  # planted: constant weights
        self.fc2 = nn.Dense(16, 16, weight_init=Constant(0.1), bias_init="zeros")
        self.head = nn.Dense(16, 1, weight_init=Constant(0.1))
        self.relu = nn.ReLU()

    def construct(self, x):
        return self.head(self.relu(self.fc2(self.relu(self.fc1(x)))))


net = Net()
optimizer = nn.Adam(net.trainable_params(), learning_rate=1e-2)


def forward(x, y):
    return ops.mse_loss(net(x), y)


grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)


@ms.jit
def train_step(x, y):
    loss, grads = grad_fn(x, y)
    optimizer(grads)
    return loss


rng = np.random.default_rng(7)
x = rng.normal(size=(64, 8)).astype(np.float32)
y = np.abs(x[:, :2]).sum(axis=1, keepdims=True).astype(np.float32)
for step in range(4):  # full-batch steps on the same 64 samples
    loss = train_step(ms.Tensor(x), ms.Tensor(y))
    print(f"step {step} loss {float(loss.asnumpy()):.4f}")
weights = net.fc1.weight.asnumpy()
print(f"fc1 units after training: largest difference from unit 0 {np.abs(weights - weights[0]).max():.3g}, "
      f"weights span {np.ptp(weights):.3g}")
