"""Small CPU trainings, each with one planted symptom from the accuracy guide. argv[1] picks it:

frozen       fc1 is not given to the optimizer (Model.train): its weights never change.
zero_init    fc1.weight initialised to all zeros (custom @ms.jit loop).
dead_relu    fc1's bias is -100, so the ReLU after it outputs only zeros (Model.train).
deep_sigmoid eight Sigmoid layers with tiny initial weights: the first layers' gradients vanish (jit loop).
"""

import sys

import numpy as np
import mindspore as ms
import mindspore.dataset as ds
from mindspore import nn, ops
from mindspore.common.initializer import Normal
from mindspore.train import Model

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(5)
MODE = sys.argv[1]


def batches():
    rng = np.random.default_rng(5)
    for _ in range(4):
        x = rng.normal(size=(16, 8)).astype(np.float32)
        yield x, x[:, :1] * 0.5 + 0.1


def train_with_model(net, params):
    model = Model(net, nn.MSELoss(), nn.Momentum(params, 0.05, 0.9))
    model.train(1, ds.GeneratorDataset(batches, ["x", "y"], shuffle=False), dataset_sink_mode=False)


def train_with_jit_loop(net):
    optimizer = nn.Adam(net.trainable_params(), 1e-3)

    def forward(x, y):
        return ops.mse_loss(net(x), y)

    grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)

    @ms.jit
    def train_step(x, y):
        loss, grads = grad_fn(x, y)
        optimizer(grads)
        return loss

    for x, y in batches():
        train_step(ms.Tensor(x), ms.Tensor(y))


class TwoLayer(nn.Cell):
    def __init__(self, fc1_weight="normal", fc1_bias="zeros"):
        super().__init__()
        self.fc1 = nn.Dense(8, 16, weight_init=fc1_weight, bias_init=fc1_bias)
        self.relu = nn.ReLU()
        self.fc2 = nn.Dense(16, 1)

    def construct(self, x):
        return self.fc2(self.relu(self.fc1(x)))


class DeepSigmoid(nn.Cell):
    def __init__(self, depth=8):
        super().__init__()
        self.layers = nn.SequentialCell([nn.SequentialCell(nn.Dense(8, 8, weight_init=Normal(0.01)), nn.Sigmoid())
                                         for _ in range(depth)])
        self.head = nn.Dense(8, 1)

    def construct(self, x):
        return self.head(self.layers(x))


if MODE == "frozen":
    net = TwoLayer()
    train_with_model(net, net.fc2.trainable_params())
elif MODE == "zero_init":
    train_with_jit_loop(TwoLayer(fc1_weight="zeros"))
elif MODE == "dead_relu":
    net = TwoLayer(fc1_bias=ms.Tensor(np.full(16, -100.0, np.float32)))
    train_with_model(net, net.trainable_params())
elif MODE == "deep_sigmoid":
    train_with_jit_loop(DeepSigmoid())
else:
    raise SystemExit(f"unknown mode {MODE}")
print("trained", MODE)
