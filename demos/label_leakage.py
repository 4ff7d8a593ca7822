"""Demo: a custom @ms.jit loop where the label is also an input feature: the loss falls below 1e-6 by step 4.

Planted cause (accuracy guide, "Common Symptoms": "The loss value is 0"; "Checking the Loss Curve" > other loss
symptoms; "Common Causes" > dataset problems): the training table holds the target in column 0 and three
feature columns, and the script slices the features as table[:, :4] instead of table[:, 1:4], so the target
itself is fed to the model. A linear model only has to copy input 0: with standardised columns and SGD at
lr=0.5 each step removes most of the remaining error, and the loss falls from ~1 to below 1e-6 within a few
steps. Such a model has learned nothing it could use on real inputs.
Run it:  msdbg demo label_leakage --batch
    (the same as: msdbg run --batch -x demos/label_leakage.msdbg demos/label_leakage.py)
"""

import numpy as np
import mindspore as ms
from mindspore import nn, ops

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(10)

net = nn.Dense(4, 1)
optimizer = nn.SGD(net.trainable_params(), learning_rate=0.5)


def forward(x, y):
    return ops.mse_loss(net(x), y)


grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)


@ms.jit
def train_step(x, y):
    loss, grads = grad_fn(x, y)
    optimizer(grads)
    return loss


rng = np.random.default_rng(10)
for step in range(8):
    table = rng.normal(size=(512, 4)).astype(np.float32)  # column 0: the target; columns 1-3: features
    features = table[:, :4]  # planted: should be table[:, 1:4]; the target leaks into the inputs
    target = table[:, :1]
    loss = train_step(ms.Tensor(features), ms.Tensor(target))
    print(f"step {step} loss {float(loss.asnumpy()):.3g}")
