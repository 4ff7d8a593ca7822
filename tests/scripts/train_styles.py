"""One training driver for test scripts: a custom @ms.jit loop ("jit") or Model.train ("model")."""

import sys
from typing import Callable

import numpy as np
import mindspore as ms
import mindspore.dataset as ds
from mindspore.train import Model


def style_from_argv() -> str:
    """argv[1]: "jit" (default) or "model"."""
    return sys.argv[1] if len(sys.argv) > 1 else "jit"


def train(net, loss_fn, optimizer, batch: Callable[[int], tuple[np.ndarray, np.ndarray]], steps: int,
          style: str) -> None:
    """Train ``steps`` steps on ``batch(step)`` in the given style, printing the loss of each jit step."""
    if style == "model":
        data = ds.GeneratorDataset(lambda: (batch(s) for s in range(steps)), ["x", "y"], shuffle=False)
        Model(net, loss_fn, optimizer).train(1, data, dataset_sink_mode=False)
    else:
        def forward(x, y):
            return loss_fn(net(x), y)

        grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)

        @ms.jit
        def train_step(x, y):
            loss, grads = grad_fn(x, y)
            optimizer(grads)
            return loss

        for step in range(steps):
            x, y = batch(step)
            print(f"step {step} loss {float(train_step(ms.Tensor(x), ms.Tensor(y)).asnumpy()):.4f}")
    print("trained")
