"""Demo: Model.train with parameter groups where the bias group never reaches the optimizer: biases stay frozen.

Planted cause (accuracy guide, "Common Causes" > computational graph structure problems, item 5: "the weight is
improperly frozen ... Parameters that are not transferred to the optimizer will not be updated"; "Checking the
Loss Curve" item 4; symptom "Weight not updated"): the script splits the parameters into a weight-decay group
(the weights) and a no-decay group (the biases), as is usual, but builds the optimizer from the decay group only.
fc1.bias and fc2.bias are never updated; nothing fails, the loss just converges worse than it should.
Run it:  msdbg demo frozen_layer --batch
    (the same as: msdbg run --batch -x demos/frozen_layer.msdbg demos/frozen_layer.py)
"""

import numpy as np
import mindspore as ms
import mindspore.dataset as ds
from mindspore import nn
from mindspore.train import Callback, Model

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(6)


class Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(8, 16)
        self.relu = nn.ReLU()
        self.fc2 = nn.Dense(16, 1)

    def construct(self, x):
        return self.fc2(self.relu(self.fc1(x)))


def batches():
    rng = np.random.default_rng(6)
    for _ in range(4):
        x = rng.normal(size=(16, 8)).astype(np.float32)
        yield x, x[:, :2].sum(axis=1, keepdims=True) + 3.0  # the offset 3.0 needs the biases to learn


class PrintLoss(Callback):
    def on_train_step_end(self, run_context):
        cb = run_context.original_args()
        print(f"step {cb.cur_step_num - 1} loss {float(cb.net_outputs.asnumpy()):.4f}")


net = Net()
decay = [p for p in net.trainable_params() if p.name.endswith("weight")]
no_decay = [p for p in net.trainable_params() if p.name.endswith("bias")]
groups = [{"params": decay, "weight_decay": 1e-4}]  # planted: the no_decay group is built but never added
optimizer = nn.Momentum(groups, learning_rate=0.02, momentum=0.9)
model = Model(net, nn.MSELoss(), optimizer)
model.train(1, ds.GeneratorDataset(batches, ["x", "y"], shuffle=False), callbacks=[PrintLoss()],
            dataset_sink_mode=False)
