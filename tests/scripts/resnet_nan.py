"""mindcv 0.3.0 resnet18 on 32x32 images, batch 2, 2 steps; at step 1 the forward takes log of an image's mean, 0.

Convolution backward kernels (Conv2DBackpropInput/Filter) are created after the traced graph: their dump
names and their graph names differ. argv[1]: "jit" (a custom @ms.jit loop, default) or "model" (Model.train).
"""

import numpy as np
import mindspore as ms
from mindspore import nn, ops
from train_styles import style_from_argv, train
from mindcv.models import resnet18

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(0)
STEPS, BAD_STEP = 2, 1


class LogInputNet(nn.Cell):
    def __init__(self):
        super().__init__()
        self.backbone = resnet18(num_classes=10)

    def construct(self, x):
        brightness = ops.log(x.mean(axis=(1, 2, 3)))  # -inf for an all-black image
        return self.backbone(x) + brightness.reshape(-1, 1)


def batch(step):
    rng = np.random.default_rng(step)
    x = rng.uniform(0.5, 1.5, size=(2, 3, 32, 32)).astype(np.float32)
    if step == BAD_STEP:
        x[1] = 0.0
    return x, rng.integers(0, 10, size=(2,)).astype(np.int32)


net = LogInputNet()
loss_fn = nn.CrossEntropyLoss()
optimizer = nn.Momentum(net.trainable_params(), learning_rate=0.01, momentum=0.9)

train(net, loss_fn, optimizer, batch, STEPS, style_from_argv())
