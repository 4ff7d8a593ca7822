"""Model.train with a planted 0/0: a hand-written normalisation divides by a row sum that is 0 at step 2.

argv[1]: "sink" to train with dataset_sink_mode=True.
"""

import sys

import numpy as np
import mindspore as ms
import mindspore.dataset as ds
from mindspore import nn
from mindspore.train import Model

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(1)


class NormalisedNet(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc = nn.Dense(4, 1)

    def construct(self, x):
        share = x / x.sum(axis=1, keepdims=True)  # 0/0 when a row is all zero
        return self.fc(share)


def batches():
    rng = np.random.default_rng(1)
    for step in range(5):
        x = rng.uniform(0.1, 1.0, size=(8, 4)).astype(np.float32)
        if step == 2:
            x[3] = 0.0
        yield x, np.ones((8, 1), np.float32)


data = ds.GeneratorDataset(batches, ["x", "y"], shuffle=False)
net = NormalisedNet()
model = Model(net, nn.MSELoss(), nn.Momentum(net.trainable_params(), 0.01, 0.9))
model.train(1, data, dataset_sink_mode=len(sys.argv) > 1 and sys.argv[1] == "sink")
print("trained")
