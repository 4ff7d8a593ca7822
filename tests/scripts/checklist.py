"""Small CPU classifier trainings (graph mode), each with one planted item of the accuracy guide's checklist.

argv[1] picks it; argv[2] (optional) the style: ``model`` (Model.train, the default) or ``jit`` (@ms.jit loop);
argv[3] (optional) the number of steps.

healthy        a 3-class MLP classifier, shuffled labels, nothing planted (the control).
cnn            healthy control: Conv2d + BatchNorm + ReLU on 8x8 images.
lstm           healthy control: an LSTM over sequences of 4 steps.
shared         the hidden layers are one Dense instance repeated ([layer] * 2): weights improperly shared.
softmax_loss   a Softmax before SoftmaxCrossEntropyWithLogits, which applies softmax itself.
missing        one sample of the third batch has a NaN feature (a missing value).
bad_labels     labels 0..4 while the network has 3 classes.
unshuffled     every batch holds one class only (data sorted by label).
imbalanced     class 2 is 1 label in 144 (12 batches).
unnormalised   features scaled by 1000 (raw units).
abnormal       the fifth batch's features are 1000 times larger than the others'.
lr_low         a learning rate of 1e-7: every weight barely moves.
disconnected   a side branch whose output never reaches the loss.
flat           the labels are noise, unrelated to the features: the loss cannot fall.
int_division   grey levels 0..255 (int32) scaled with `x // 32` where `x / 32` was meant: the integer quotient is
               cast to float and fed to the network.
coarse_labels  healthy control: 6 fine labels merged into 3 classes with `y // 2` inside the loss (integer
               division that is meant to stay integer).
exploding      full-batch linear regression (one standardised feature) with SGD at lr 1.1: every step overshoots
               the minimum by more than it corrects, the loss grows geometrically (x1.44 a step) without overflowing.
oscillating    the same regression with Momentum(0.99) at lr 1.1: the weights circle the minimum a little over a
               quarter turn a step, so the loss alternates high / low and barely falls.
int_legit      healthy control: grey levels (int32) divided with ops.div (a float quotient), their parity
               (x % 2) and a constant's floor (arange // 2) as float features: no integer division to report.
symmetric_init every Dense weight initialised to the constant 0.1, biases to 0: each layer's units start (and
               stay) identical.
saturating_init  the first layer's weights drawn from Normal(sigma=20), ~35x He's std: the Sigmoid after it
               sits at 0 or 1 from the first step.
embedding      healthy control: tokens (the class plus noise, 0..19) looked up in a 64-wide embedding table drawn
               from Normal(sigma=1) (PyTorch's default), one row of it constant: a lookup table is no layer whose
               scale multiplies its input.
"""

import sys

import numpy as np
import mindspore as ms
import mindspore.dataset as ds
from mindspore import nn, ops
from mindspore.common.initializer import Constant, Normal
from mindspore.train import Model

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(7)
MODE = sys.argv[1]
STYLE = sys.argv[2] if len(sys.argv) > 2 else "model"
CLASSES, FEATURES, BATCH = 3, 6, 12
STEPS = int(sys.argv[3]) if len(sys.argv) > 3 else 12 if MODE == "imbalanced" else 6
REGRESSION = MODE in ("exploding", "oscillating")


def batches():
    rng = np.random.default_rng(7)
    if REGRESSION:
        yield from regression_batches(rng)
        return
    for step in range(STEPS):
        labels = rng.integers(0, CLASSES, BATCH).astype(np.int32)
        if MODE == "bad_labels":
            labels = rng.integers(0, CLASSES + 1, BATCH).astype(np.int32)
        if MODE == "unshuffled":
            labels = np.full(BATCH, step % CLASSES, np.int32)
        if MODE == "imbalanced":
            labels = rng.integers(0, CLASSES - 1, BATCH).astype(np.int32)
            labels[0] = CLASSES - 1 if step == 5 else labels[0]
        x = rng.normal(size=(BATCH, FEATURES)).astype(np.float32)
        x += 0.0 if MODE == "flat" else labels[:, None].astype(np.float32)
        if MODE == "cnn":
            x = np.tile(x[:, None, None, :], (1, 1, 8, 1))  # 8x6 single-channel images
        if MODE == "lstm":
            x = np.stack([x + rng.normal(scale=0.1, size=x.shape).astype(np.float32) for _ in range(4)], axis=1)
        if MODE == "missing" and step == 2:
            x[4, 1] = np.nan
        if MODE == "unnormalised" or (MODE == "abnormal" and step == 4):
            x *= 1000.0
        if MODE == "embedding":
            x = np.clip(np.round(x[:, :4] * 3.0 + 8.0), 0, 19).astype(np.int32)  # 4 tokens per sample
        if MODE in ("int_division", "int_legit"):
            x = np.clip(np.round(x * 40.0 + 100.0), 0, 255).astype(np.int32)  # raw grey levels
        if MODE == "coarse_labels":
            labels = 2 * labels + rng.integers(0, 2, BATCH).astype(np.int32)  # fine labels 0..5
        yield x, labels


def regression_batches(rng):
    """The same standardised full batch of 48 samples every step: y = 2x + 1 plus a little noise."""
    x = rng.normal(size=(48, 1))
    x = ((x - x.mean()) / x.std()).astype(np.float32)
    y = (2.0 * x + 1.0 + rng.normal(scale=0.1, size=x.shape)).astype(np.float32)
    for _ in range(STEPS):
        yield x, y


class Classifier(nn.Cell):
    def __init__(self):
        super().__init__()
        self.inp = nn.Dense(FEATURES, 16)
        hidden = nn.Dense(16, 16)
        self.hidden = nn.SequentialCell([hidden, nn.ReLU(), hidden if MODE == "shared" else nn.Dense(16, 16),
                                         nn.ReLU()])
        self.out = nn.Dense(16, CLASSES)
        self.softmax = nn.Softmax() if MODE == "softmax_loss" else None
        self.side = nn.Dense(16, 4) if MODE == "disconnected" else None

    def construct(self, x):
        if MODE == "int_division":
            x = ops.cast(x // 32, ms.float32)  # planted: `//` where `/` was meant (grey levels to 0..8)
        if MODE == "int_legit":
            x = ops.div(x, 32) + 0.1 * ops.cast(x % 2, ms.float32) \
                + 0.01 * ops.cast(ops.arange(FEATURES) // 2, ms.float32)
        features = self.hidden(self.inp(x))
        if MODE == "disconnected":
            self.side(features)  # computed, but its output is dropped: no gradient reaches side.weight
        logits = self.out(features)
        return self.softmax(logits) if self.softmax is not None else logits


if MODE == "symmetric_init":
    class Classifier(nn.Cell):
        def __init__(self):
            super().__init__()
            self.inp = nn.Dense(FEATURES, 16, weight_init=Constant(0.1), bias_init="zeros")
            self.hidden = nn.SequentialCell([nn.Dense(16, 16, weight_init=Constant(0.1), bias_init="zeros"),
                                             nn.ReLU()])
            self.out = nn.Dense(16, CLASSES, weight_init=Constant(0.1), bias_init="zeros")

        def construct(self, x):
            return self.out(self.hidden(self.inp(x)))

if MODE == "saturating_init":
    class Classifier(nn.Cell):
        def __init__(self):
            super().__init__()
            self.inp = nn.Dense(FEATURES, 16, weight_init=Normal(sigma=20.0))
            self.sigmoid = nn.Sigmoid()
            self.out = nn.Dense(16, CLASSES)

        def construct(self, x):
            return self.out(self.sigmoid(self.inp(x)))


class ConvClassifier(nn.Cell):
    def __init__(self):
        super().__init__()
        self.features = nn.SequentialCell([nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten()])
        self.out = nn.Dense(4 * 8 * 6, CLASSES)

    def construct(self, x):
        return self.out(self.features(x))


class LSTMClassifier(nn.Cell):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(FEATURES, 8, batch_first=True)
        self.out = nn.Dense(8, CLASSES)

    def construct(self, x):
        output, _ = self.lstm(x)
        return self.out(output[:, -1])


class EmbeddingClassifier(nn.Cell):
    def __init__(self):
        super().__init__()
        table = np.random.default_rng(7).normal(size=(20, 64)).astype(np.float32)
        table[0] = 0.5  # a padding-like row: identical rows of a lookup table break no symmetry
        self.embed = nn.Embedding(20, 64, embedding_table=ms.Tensor(table))
        self.out = nn.Dense(64, CLASSES)

    def construct(self, x):
        return self.out(self.embed(x).mean(axis=1))


class CoarseLabelLoss(nn.Cell):
    """Cross-entropy over 3 coarse classes of 6 fine labels: fine label // 2."""

    def __init__(self):
        super().__init__()
        self.loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")

    def construct(self, logits, labels):
        return self.loss(logits, labels // 2)


net = {"cnn": ConvClassifier, "lstm": LSTMClassifier, "embedding": EmbeddingClassifier}.get(MODE, Classifier)()
loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
optimizer = nn.Momentum(net.trainable_params(), 1e-7 if MODE == "lr_low" else 0.05, 0.9)
if MODE == "coarse_labels":
    loss_fn = CoarseLabelLoss()
if REGRESSION:
    net, loss_fn = nn.Dense(1, 1), nn.MSELoss()
    optimizer = nn.SGD(net.trainable_params(), 1.1) if MODE == "exploding" else \
        nn.Momentum(net.trainable_params(), 1.1, 0.99)
if STYLE == "model":
    model = Model(net, loss_fn, optimizer)
    model.train(1, ds.GeneratorDataset(batches, ["x", "y"], shuffle=False), dataset_sink_mode=False)
else:
    def forward(x, y):
        return loss_fn(net(x), y)

    grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)

    @ms.jit
    def train_step(x, y):
        loss, grads = grad_fn(x, y)
        optimizer(grads)
        return loss

    for x, y in batches():
        print("loss", float(train_step(ms.Tensor(x), ms.Tensor(y)).asnumpy()))
print("trained", MODE, STYLE)
