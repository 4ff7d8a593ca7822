"""A tiny training for `msdbg compare` tests: one planted change per option, everything else identical.

--act2 relu|sigmoid     activation after the second layer
--eps X                 epsilon of the hand-written feature normalisation (0: removed)
--amp O0|O2             auto_mixed_precision level
--seed-fc2 N            seed of the second layer's initial weights
--bn                    a BatchNorm1d after the second layer (it updates its moving statistics in place)
--extra-tanh            an extra Tanh on the input that adds 0 to the output: same values, but the real Tanh
                        becomes Tanh-op1 (other kernel numbering)
"""

import argparse

import numpy as np
import mindspore as ms
from mindspore import Tensor, nn, ops

parser = argparse.ArgumentParser()
parser.add_argument("--act2", default="relu")
parser.add_argument("--eps", type=float, default=1e-3)
parser.add_argument("--amp", default="O0")
parser.add_argument("--seed-fc2", type=int, default=2)
parser.add_argument("--bn", action="store_true")
parser.add_argument("--extra-tanh", action="store_true")
parser.add_argument("--steps", type=int, default=2)
args = parser.parse_args()

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(0)


def dense(n_in: int, n_out: int, seed: int) -> nn.Dense:
    rng = np.random.default_rng(seed)
    weight = Tensor(rng.normal(0, 0.5, size=(n_out, n_in)).astype(np.float32))
    return nn.Dense(n_in, n_out, weight_init=weight, bias_init="zeros")


class Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = dense(8, 16, 1)
        self.fc2 = dense(16, 16, args.seed_fc2)
        self.bn2 = nn.BatchNorm1d(16) if args.bn else nn.Identity()
        self.act2 = nn.Sigmoid() if args.act2 == "sigmoid" else nn.ReLU()
        self.fc3 = dense(16, 1, 3)
        self.eps = args.eps

    def normalise(self, h):
        mean = h.mean(axis=0, keep_dims=True)
        var = ((h - mean) ** 2).mean(axis=0, keep_dims=True)
        if self.eps:
            return (h - mean) / ops.sqrt(var + self.eps)  # normalisation with epsilon
        return (h - mean) / ops.sqrt(var)  # normalisation without epsilon

    def construct(self, x):
        if args.extra_tanh:
            unused = ops.tanh(x).sum() * 0.0  # created first: takes the number Tanh-op0
        h = ops.tanh(self.fc1(x))
        h = self.normalise(h)
        h = self.act2(self.bn2(self.fc2(h)))
        out = self.fc3(h)
        if args.extra_tanh:
            out = out + unused
        return out


net = Net()
if args.amp != "O0":
    net = ms.amp.auto_mixed_precision(net, args.amp)
loss_net = nn.WithLossCell(net, nn.MSELoss())
train = nn.TrainOneStepCell(loss_net, nn.SGD(net.trainable_params(), learning_rate=0.05))
train.set_train()

rng = np.random.default_rng(0)
for step in range(args.steps):
    x = rng.normal(size=(8, 8)).astype(np.float32)
    y = x[:, :1] * 0.5
    loss = train(Tensor(x), Tensor(y))
    print(f"step {step} loss {float(loss.asnumpy()):.6f}")
