"""Small real trainings of the kind users run, for msdbg's end-to-end tests (graph mode, CPU).

usage: zoo_train.py MODEL [VARIANT] [STEPS]
MODEL: resnet18 | mobilenet_v2 (mindcv 0.3.0, 32x32 images) | transformer (nn.TransformerEncoder) | lstm |
       accum (gradient accumulation with control flow, every 2nd step updates) | train_eval (Model.train then
       Model.eval) | amp (O2 mixed precision, DynamicLossScaler + all_finite in a jit loop) | warmup (lr from 0)
VARIANT: healthy (default) | frozen (a block's parameters are left out of the optimizer) | unused (bidirectional
       LSTM whose reverse half is unused)
Each step prints ``step N loss L``.
"""

import sys

import numpy as np
import mindspore as ms
import mindspore.dataset as ds
from mindspore import nn, ops
from mindspore.train import Callback, Model

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(1)

MODEL = sys.argv[1]
VARIANT = sys.argv[2] if len(sys.argv) > 2 else "healthy"
STEPS = int(sys.argv[3]) if len(sys.argv) > 3 else 4
RNG = np.random.default_rng(1)


def images(batch=2, classes=10):
    x = RNG.normal(size=(batch, 3, 32, 32)).astype(np.float32)
    return ms.Tensor(x), ms.Tensor(RNG.integers(0, classes, size=(batch,)).astype(np.int32))


class Encoder(nn.Cell):
    """A small Transformer encoder classifier over token ids."""

    def __init__(self, vocab=50, width=16, classes=4):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        layer = nn.TransformerEncoderLayer(width, nhead=2, dim_feedforward=32, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2)
        self.head = nn.Dense(width, classes)

    def construct(self, tokens):
        return self.head(self.encoder(self.embed(tokens)).mean(axis=1))


class Recurrent(nn.Cell):
    """An LSTM classifier; ``unused_reverse``: bidirectional, but only the forward half's output is read."""

    def __init__(self, unused_reverse=False, width=8, hidden=12, classes=3):
        super().__init__()
        self.hidden = hidden
        self.lstm = nn.LSTM(width, hidden, batch_first=True, bidirectional=unused_reverse)
        self.head = nn.Dense(hidden, classes)

    def construct(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1, :self.hidden])


def network():
    if MODEL in ("resnet18", "mobilenet_v2"):
        import mindcv

        name = {"mobilenet_v2": "mobilenet_v2_035_96"}.get(MODEL, MODEL)  # width 0.35: the smallest variant
        return mindcv.create_model(name, num_classes=10, pretrained=False)
    if MODEL == "transformer":
        return Encoder()
    if MODEL == "lstm":
        return Recurrent(unused_reverse=VARIANT == "unused")
    return nn.SequentialCell(nn.Dense(6, 16), nn.ReLU(), nn.Dense(16, 3))


def batch():
    if MODEL in ("resnet18", "mobilenet_v2"):
        return images(batch=4)  # BatchNorm over 2 values (batch 2, 1x1 maps at the end) is degenerate
    if MODEL == "transformer":
        return (ms.Tensor(RNG.integers(0, 50, size=(4, 6)).astype(np.int32)),
                ms.Tensor(RNG.integers(0, 4, size=(4,)).astype(np.int32)))
    if MODEL == "lstm":
        return ms.Tensor(RNG.normal(size=(4, 5, 8)).astype(np.float32)), ms.Tensor(np.array([0, 1, 2, 1], np.int32))
    x = RNG.normal(size=(8, 6)).astype(np.float32)
    return ms.Tensor(x), ms.Tensor((x[:, 0] > 0).astype(np.int32))


def trained_params(net):
    params = net.trainable_params()
    if VARIANT == "frozen":  # planted: the first half of the parameters never reaches the optimizer
        return params[len(params) // 2:]
    return params


loss_fn = nn.CrossEntropyLoss()


def jit_loop(net):
    optimizer = nn.Momentum(trained_params(net), learning_rate=0.01, momentum=0.9)
    def forward(x, y):
        return loss_fn(net(x), y)

    grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)

    @ms.jit
    def train_step(x, y):
        loss, grads = grad_fn(x, y)
        optimizer(grads)
        return loss

    for step in range(STEPS):
        print(f"step {step} loss {float(train_step(*batch())):.6f}")


def amp_loop(net):
    """The mixed-precision loop of MindSpore's tutorial: the first steps overflow in float16 and are skipped."""
    net = ms.amp.auto_mixed_precision(net, "O2")
    optimizer = nn.Momentum(net.trainable_params(), learning_rate=0.01, momentum=0.9)
    scaler = ms.amp.DynamicLossScaler(scale_value=2.0 ** 22, scale_factor=2, scale_window=50)

    def forward(x, y):
        return scaler.scale(loss_fn(net(x), y))

    grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)

    @ms.jit
    def train_step(x, y):
        loss, grads = grad_fn(x, y)
        loss = scaler.unscale(loss)
        finite = ms.amp.all_finite(grads)
        if finite:
            optimizer(scaler.unscale(grads))
        scaler.adjust(finite)
        return loss

    for step in range(STEPS):
        print(f"step {step} loss {float(train_step(*batch())):.6f} scale {float(scaler.scale_value.value()):g}")


def accumulation_loop(net, every=2):
    """Gradient accumulation as in MindSpore's tutorial: buffers acc.*, the optimizer runs every ``every`` steps."""
    optimizer = nn.Momentum(net.trainable_params(), learning_rate=0.01, momentum=0.9)
    accumulated = optimizer.parameters.clone(prefix="acc", init="zeros")
    zeros = optimizer.parameters.clone(prefix="zeros", init="zeros")
    counter = ms.Parameter(ms.Tensor(1, ms.int32), "counter")

    def forward(x, y):
        return loss_fn(net(x), y) / every

    grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)
    hyper_map = ops.HyperMap()

    @ms.jit
    def train_step(x, y):
        loss, grads = grad_fn(x, y)
        hyper_map(ops.partial(ops.assign_add), accumulated, grads)
        if counter % every == 0:
            optimizer(accumulated)
            hyper_map(ops.partial(ops.assign), accumulated, zeros)
        ops.assign_add(counter, ms.Tensor(1, ms.int32))
        return loss

    for step in range(STEPS):
        print(f"step {step} loss {float(train_step(*batch())):.6f}")


def warmup_loop(net):
    """Learning rate warm-up from 0: the first step changes no weight."""
    lr = nn.warmup_lr(0.01, STEPS, 1, 2)
    optimizer = nn.Momentum(net.trainable_params(), learning_rate=lr, momentum=0.9)
    model_loop(net, optimizer)


class PrintLoss(Callback):
    def on_train_step_end(self, run_context):
        cb = run_context.original_args()
        print(f"step {cb.cur_step_num - 1} loss {float(cb.net_outputs.asnumpy()):.6f}")


def dataset():
    rows = [tuple(t.asnumpy() for t in batch()) for _ in range(STEPS)]
    return ds.GeneratorDataset(lambda: iter(rows), ["x", "y"], shuffle=False)


def model_loop(net, optimizer=None, evaluate=False):
    optimizer = optimizer or nn.Momentum(trained_params(net), learning_rate=0.01, momentum=0.9)
    model = Model(net, loss_fn, optimizer, metrics={"loss": nn.Loss()} if evaluate else None)
    model.train(1, dataset(), callbacks=[PrintLoss()], dataset_sink_mode=False)
    if evaluate:
        print("eval", model.eval(dataset(), dataset_sink_mode=False))


NET = network()
if MODEL == "amp":
    amp_loop(NET)
elif MODEL == "accum":
    accumulation_loop(NET)
elif MODEL == "warmup":
    warmup_loop(NET)
elif MODEL == "train_eval":
    model_loop(NET, evaluate=True)
elif MODEL in ("resnet18", "mobilenet_v2"):
    model_loop(NET)
else:
    jit_loop(NET)
print("trained")
