"""Demo: Model.train of a binary classifier whose Sigmoid output goes into BCEWithLogitsLoss: the loss stalls.

Planted cause (accuracy guide, "Common Causes" > computational graph structure problems, item 6: "The loss
function is incorrect ... For example, BCELoss and BCEWithLogitsLoss are different. Select a proper value based
on whether the sigmoid function is required"; "Checking the Loss Curve" > the loss convergence is slow, item
1.(2)): the network already ends in nn.Sigmoid, and nn.BCEWithLogitsLoss applies sigmoid again. The predicted
probability is sigmoid(sigmoid(z)), always between 0.5 and 0.73, so the loss cannot go below ~0.5 on
separable data and barely moves. No tensor is out of range, so no value watchpoint points at it: msdbg's
diagnose finds it in the graph (a Sigmoid op whose output feeds the BCEWithLogits op).
Run it:  msdbg demo wrong_loss_api --batch
    (the same as: msdbg run --batch -x demos/wrong_loss_api.msdbg demos/wrong_loss_api.py)
"""

import numpy as np
import mindspore as ms
import mindspore.dataset as ds
from mindspore import nn
from mindspore.train import Callback, Model

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(9)


class Classifier(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(4, 16)
        self.relu = nn.ReLU()
        self.fc2 = nn.Dense(16, 1)
        self.sigmoid = nn.Sigmoid()  # outputs probabilities

    def construct(self, x):
        return self.sigmoid(self.fc2(self.relu(self.fc1(x))))


def batches():
    rng = np.random.default_rng(9)
    for _ in range(6):
        x = rng.normal(size=(32, 4)).astype(np.float32)
        yield x, (x[:, :1] + x[:, 1:2] > 0).astype(np.float32)


class PrintLoss(Callback):
    def on_train_step_end(self, run_context):
        cb = run_context.original_args()
        print(f"step {cb.cur_step_num - 1} loss {float(cb.net_outputs.asnumpy()):.4f}")


net = Classifier()
loss_fn = nn.BCEWithLogitsLoss()  # planted: expects logits, applies sigmoid itself; should be nn.BCELoss()
model = Model(net, loss_fn, nn.Adam(net.trainable_params(), learning_rate=1e-2))
model.train(1, ds.GeneratorDataset(batches, ["x", "y"], shuffle=False), callbacks=[PrintLoss()],
            dataset_sink_mode=False)
