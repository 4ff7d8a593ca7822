"""Demo: Model.train on raw features in the tens of thousands that were never normalised.

Planted cause (accuracy guide, "Common Causes" > data processing problems, item 2: "Data is not normalized or
standardized ... the model requires that the data of each dimension ranges from -1 to 1"; "Checking the Loss
Curve" > an abnormal loss value, item 1.(3): "check whether the input data contains ... values that are too large";
"Common Tuning Suggestions" > "Normalizing Data"): the features are sensor readings in raw units, about 1e4 times
their standardised values. The labels are of order 1, but the first layer's outputs are of order 1e4, so the
initial loss is huge and the first layer's gradients are ~1e4 times too large for any sensible learning rate.
Run it:  msdbg demo unnormalised_input --batch
    (the same as: msdbg run --batch -x demos/unnormalised_input.msdbg demos/unnormalised_input.py)
"""

import numpy as np
import mindspore as ms
import mindspore.dataset as ds
from mindspore import nn
from mindspore.train import Callback, Model

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(8)

RAW_SCALE = 1e4  # planted: raw units; the pipeline should standardise (x - mean) / std and does not


class Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(6, 16)
        self.relu = nn.ReLU()
        self.fc2 = nn.Dense(16, 1)

    def construct(self, x):
        return self.fc2(self.relu(self.fc1(x)))


def batches():
    rng = np.random.default_rng(8)
    for _ in range(4):
        standard = rng.normal(size=(16, 6)).astype(np.float32)
        label = (standard[:, :1] - 0.5 * standard[:, 1:2]).astype(np.float32)
        yield standard * RAW_SCALE, label  # the raw readings go to the model


class PrintLoss(Callback):
    def on_train_step_end(self, run_context):
        cb = run_context.original_args()
        print(f"step {cb.cur_step_num - 1} loss {float(cb.net_outputs.asnumpy()):.4g}")


net = Net()
model = Model(net, nn.MSELoss(), nn.Adam(net.trainable_params(), learning_rate=1e-3))
model.train(1, ds.GeneratorDataset(batches, ["x", "y"], shuffle=False), callbacks=[PrintLoss()],
            dataset_sink_mode=False)
