"""Demo: Model.train on 8x8 grey images scaled with `images // 255` instead of `/ 255`: the inputs are almost all 0.

Planted cause (accuracy guide, "Checking the Model Structure" item 1: "The API is improperly used ... floating-point
division should be used, but integer division is used"): the images arrive as int32 grey levels 0..255 and the
network scales them to [0, 1] with `//`, the floor division. Every level below 255 becomes 0, so the classifier
sees black images (a saturated pixel, 1, is all that is left of the picture) and the loss barely falls from
ln 2. No tensor is out of range, so no value watchpoint points at it: msdbg's diagnose finds it in the graph (a
FloorDiv on int32 tensors computed from the data whose quotient is cast to float32), with the source line.
Run it:  msdbg demo integer_division --batch
    (the same as: msdbg run --batch -x demos/integer_division.msdbg demos/integer_division.py)
"""

import numpy as np
import mindspore as ms
import mindspore.dataset as ds
from mindspore import nn, ops
from mindspore.train import Callback, Model

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(11)


class BrightnessClassifier(nn.Cell):
    """Tells dark (0) from bright (1) 8x8 images."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(64, 16)
        self.relu = nn.ReLU()
        self.fc2 = nn.Dense(16, 2)

    def construct(self, images):
        pixels = ops.cast(images // 255, ms.float32).reshape(-1, 64)  # planted: meant images / 255
        return self.fc2(self.relu(self.fc1(pixels)))


def batches():
    rng = np.random.default_rng(11)
    for _ in range(8):
        labels = rng.integers(0, 2, 16).astype(np.int32)
        mean = np.where(labels == 1, 160.0, 90.0)[:, None, None]
        images = np.clip(np.round(rng.normal(mean, 50.0, size=(16, 8, 8))), 0, 255).astype(np.int32)
        yield images, labels


class PrintLoss(Callback):
    def on_train_step_end(self, run_context):
        cb = run_context.original_args()
        print(f"step {cb.cur_step_num - 1} loss {float(cb.net_outputs.asnumpy()):.4f}")


net = BrightnessClassifier()
model = Model(net, nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean"),
              nn.Momentum(net.trainable_params(), 0.05, 0.9))
model.train(1, ds.GeneratorDataset(batches, ["images", "labels"], shuffle=False), callbacks=[PrintLoss()],
            dataset_sink_mode=False)
