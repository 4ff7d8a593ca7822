"""A healthy training under ms.amp.auto_mixed_precision(net, "O2") (float16 compute, float32 BatchNorm and loss):
a small conv net, 32x32 images, batch 4, 3 steps. argv[1]: "jit" (default) or "model"."""

import numpy as np
import mindspore as ms
from mindspore import nn
from train_styles import style_from_argv, train

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(0)


class SmallConvNet(nn.Cell):
    def __init__(self):
        super().__init__()
        self.features = nn.SequentialCell(
            nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(8, 16, 3), nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Dense(16, 10)

    def construct(self, x):
        return self.head(self.features(x).reshape(x.shape[0], -1))


def batch(step):
    rng = np.random.default_rng(step)
    return rng.normal(size=(4, 3, 32, 32)).astype(np.float32), rng.integers(0, 10, size=(4,)).astype(np.int32)


net = ms.amp.auto_mixed_precision(SmallConvNet(), "O2")
train(net, nn.CrossEntropyLoss(), nn.Momentum(net.trainable_params(), 0.01, 0.9), batch, 3, style_from_argv())
