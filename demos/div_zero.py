"""Demo: Model.train on word-count features; a hand-written normalisation divides 0 by 0 at step 2.

Planted cause (accuracy guide, "Common Causes" > API usage problems: "in scenarios where the divisor may contain
zero, consider using DivNoNan instead of Div"; "Checking the Loss Curve" > an abnormal loss value): the network
turns raw counts into frequencies with counts / counts.sum(axis=1). One document of batch 2 has no counts at
all, its row sum is 0, the division (op Div on CPU) gives 0/0 = NaN, the loss turns NaN and the NaN spreads to
every weight. (Tanh, not ReLU, in the hidden layer: ReLU on CPU maps NaN to 0 and would hide it from the loss.)
Run it:  msdbg demo div_zero --batch
    (the same as: msdbg run --batch -x demos/div_zero.msdbg demos/div_zero.py)
"""

import numpy as np
import mindspore as ms
import mindspore.dataset as ds
from mindspore import nn
from mindspore.train import Callback, Model

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(1)


class FrequencyNet(nn.Cell):
    """Classifies a document by the frequencies of 6 words."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(6, 8)
        self.act = nn.Tanh()
        self.fc2 = nn.Dense(8, 1)

    def construct(self, counts):
        freq = counts / counts.sum(axis=1, keepdims=True)  # 0/0 = NaN for an empty document
        return self.fc2(self.act(self.fc1(freq)))


def batches():
    rng = np.random.default_rng(1)
    for step in range(5):
        counts = rng.poisson(3.0, size=(8, 6)).astype(np.float32) + 1.0
        if step == 2:
            counts[4] = 0.0  # an empty document: no word counted
        label = (counts[:, :1] > counts[:, 1:2]).astype(np.float32)
        yield counts, label


class PrintLoss(Callback):
    def on_train_step_end(self, run_context):
        cb = run_context.original_args()
        print(f"step {cb.cur_step_num - 1} loss {float(cb.net_outputs.asnumpy()):.4f}")


net = FrequencyNet()
model = Model(net, nn.MSELoss(), nn.Momentum(net.trainable_params(), 0.05, 0.9))
model.train(1, ds.GeneratorDataset(batches, ["counts", "label"], shuffle=False), callbacks=[PrintLoss()],
            dataset_sink_mode=False)
