"""A healthy Model.train run: nothing should hit. argv[1] = number of epochs (default 1).

With MSDBG_TEST_STEP_LOG set, appends at each step end how many iteration folders the dump holds.
"""

import json
import os
import sys

import numpy as np
import mindspore as ms
import mindspore.dataset as ds
from mindspore import nn
from mindspore.train import Callback, Model

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(2)


def batches():
    rng = np.random.default_rng(2)
    for _ in range(6):
        x = rng.normal(size=(8, 4)).astype(np.float32)
        yield x, x[:, :1] * 2.0 + 1.0


class CountStepFolders(Callback):
    """Record the number of step folders present when each step ends (to test retention)."""

    def on_train_step_end(self, run_context):
        root = json.load(open(os.environ["MINDSPORE_DUMP_CONFIG"]))["common_dump_settings"]["path"]
        graph_dir = os.path.join(root, "rank_0", "Net", "0")
        with open(os.environ["MSDBG_TEST_STEP_LOG"], "a") as log:
            log.write(f"{len(os.listdir(graph_dir))}\n")


net = nn.SequentialCell(nn.Dense(4, 8), nn.ReLU(), nn.Dense(8, 1))
model = Model(net, nn.MSELoss(), nn.Adam(net.trainable_params(), 1e-2))
model.train(int(sys.argv[1]) if len(sys.argv) > 1 else 1, ds.GeneratorDataset(batches, ["x", "y"], shuffle=False),
            dataset_sink_mode=False, callbacks=[CountStepFolders()] if "MSDBG_TEST_STEP_LOG" in os.environ else [])
print("trained")
