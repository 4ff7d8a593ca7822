"""Model.train on synthetic data (CPU, graph mode): the tiny MLP or mindcv's resnet18, for benchmarks/overhead.py.

    python benchmarks/model_train.py mlp [STEPS] [BATCH]        (8-32-2 MLP; defaults 480 steps, batch 16)
    python benchmarks/model_train.py resnet18 [STEPS] [BATCH]   (mindcv 0.3.0, 32x32 images; defaults 30, 16)

Prints ``start t=SECONDS``, then ``step N t=SECONDS cpu=SECONDS loss=VALUE`` at the end of each step (a Callback,
so the times include Model.train's own per-step work; ``cpu``: the process's CPU time, all threads), then
``done t=SECONDS``, like benchmarks/lenet_train.py.
"""

import sys
import time

import numpy as np
import mindspore as ms
from mindspore import nn
from mindspore.dataset import GeneratorDataset
from mindspore.train import Callback, Model

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_device("CPU")
ms.set_seed(0)

MODEL = sys.argv[1] if len(sys.argv) > 1 else "mlp"
STEPS = int(sys.argv[2]) if len(sys.argv) > 2 else (480 if MODEL == "mlp" else 30)
BATCH = int(sys.argv[3]) if len(sys.argv) > 3 else 16


class MLP(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1, self.relu, self.fc2 = nn.Dense(8, 32), nn.ReLU(), nn.Dense(32, 2)

    def construct(self, x):
        return self.fc2(self.relu(self.fc1(x)))


if MODEL == "mlp":
    net, shape, classes = MLP(), (8,), 2
    optimizer = nn.SGD(net.trainable_params(), learning_rate=0.05)
elif MODEL == "resnet18":
    from mindcv.models import create_model

    net, shape, classes = create_model("resnet18", num_classes=10, pretrained=False), (3, 32, 32), 10
    optimizer = nn.Momentum(net.trainable_params(), learning_rate=0.01, momentum=0.9)
else:
    raise SystemExit(f"model {MODEL}: expected mlp or resnet18")

rng = np.random.default_rng(0)
inputs = rng.normal(size=(8 * BATCH, *shape)).astype(np.float32)
labels = rng.integers(0, classes, size=(8 * BATCH,)).astype(np.int32)


def samples():
    for i in range(STEPS * BATCH):
        yield inputs[i % len(inputs)], np.asarray(labels[i % len(labels)])  # arrays: NumPy 2 scalars are refused


class Stamp(Callback):
    def on_train_step_end(self, run_context):
        params = run_context.original_args()
        loss = float(np.asarray(params.net_outputs.asnumpy()).reshape(-1)[0])
        print(f"step {params.cur_step_num - 1} t={time.perf_counter():.6f} cpu={time.process_time():.6f} "
              f"loss={loss:.6f}", flush=True)


dataset = GeneratorDataset(samples, ["x", "y"], shuffle=False).batch(BATCH)
loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
model = Model(net, loss_fn=loss_fn, optimizer=optimizer)
start = time.perf_counter()
print(f"start t={start:.6f}", flush=True)
model.train(1, dataset, callbacks=[Stamp()], dataset_sink_mode=False)
print(f"done t={time.perf_counter():.6f}", flush=True)
