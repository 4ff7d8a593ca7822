"""A plain PyNative training (MindSpore's default mode: no set_context, no @ms.jit).

Usage: pynative_train.py UPDATE [FAULT] [STEPS]
  UPDATE: adam | sgd | momentum | manual (ops.assign_sub) | model (Model.train) | none (forward only)
  FAULT:  log0 (log of a 0 feature at step 2) | zeroinit (fc1.weight starts at 0) | healthy (default); "+steparg" passes the step number (a Python
          int) to the loss function, which makes graph mode compile a new graph every step
Prints the loss of every step (the runs with and without msdbg must print the same).
"""

import sys

import numpy as np
import mindspore as ms
from mindspore import nn, ops

UPDATE = sys.argv[1]
FAULT = sys.argv[2] if len(sys.argv) > 2 else "healthy"
STEPS = int(sys.argv[3]) if len(sys.argv) > 3 else 4
ms.set_seed(0)


class Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(4, 8)
        self.fc2 = nn.Dense(8, 1)

    def construct(self, x):
        features = ops.log(x)  # planted: -inf where a feature is 0
        return self.fc2(ops.relu(self.fc1(features)))


def batches():
    rng = np.random.default_rng(0)
    for step in range(STEPS):
        x = rng.uniform(0.5, 2.0, size=(16, 4)).astype(np.float32)
        if FAULT.startswith("log0") and step == 2:
            x[5, 2] = 0.0
        yield x, x.sum(axis=1, keepdims=True).astype(np.float32)


net = Net()
if FAULT == "zeroinit":
    net.fc1.weight.set_data(ms.Tensor(np.zeros((8, 4), np.float32)))
loss_fn = nn.MSELoss()

if UPDATE == "model":
    from mindspore import dataset as ds

    data = ds.GeneratorDataset(list(batches()), ["x", "y"], shuffle=False).batch(1, drop_remainder=True)
    data = data.map(lambda a: a.squeeze(0), ["x"]).map(lambda a: a.squeeze(0), ["y"])
    model = ms.Model(net, loss_fn, nn.SGD(net.trainable_params(), learning_rate=1e-2))

    class PrintLoss(ms.train.Callback):
        def on_train_step_end(self, run_context):
            print("loss", float(run_context.original_args().net_outputs.asnumpy()))

    model.train(1, data, callbacks=[PrintLoss()], dataset_sink_mode=False)
    sys.exit(0)

optimizers = {"adam": nn.Adam, "sgd": nn.SGD, "momentum": lambda p, learning_rate: nn.Momentum(p, learning_rate, 0.9)}
params = net.trainable_params()
optimizer = optimizers[UPDATE](params, learning_rate=1e-2) if UPDATE in optimizers else None


LR = ms.Tensor(0.01, ms.float32)  # a Tensor: `grad * 0.01` fails in graph mode here (MindSpore with NumPy 2)


def forward(x, y, step=0):
    return loss_fn(net(x), y) * (1 + 0 * step)


grad_fn = ms.value_and_grad(forward, None, params)
for step, (x, y) in enumerate(batches()):
    x, y = ms.Tensor(x), ms.Tensor(y)
    args = (x, y, step) if FAULT.endswith("+steparg") else (x, y)
    if UPDATE == "none":
        loss = forward(*args)
    else:
        loss, grads = grad_fn(*args)
        if optimizer is not None:
            optimizer(grads)
        else:
            for param, grad in zip(params, grads):
                ops.assign_sub(param, grad * LR)
    print("loss", float(loss.asnumpy()))
