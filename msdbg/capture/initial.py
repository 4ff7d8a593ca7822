"""Save the training's parameters as they are before the first graph runs (their initial values).

In batch mode msdbg asks MindSpore to dump op outputs only (half the files; the inputs repeat their producers'
outputs). The one thing only inputs held is a parameter's value before the first update, which
``weight_initialization`` judges: a ``Parameter.*`` file holds the value after its step's update. So before the
first compile msdbg finds the process's Parameter objects and saves them, and the engine uses the copies as the
pre-update values of the first training step (``History.initial_values``).
"""

from __future__ import annotations

import gc
import os

import numpy as np

SNAPSHOT_LIMIT_BYTES = 1 << 30  # above this, dump inputs as well instead of copying the parameters


def snapshot_parameters(folder: str, limit: int = SNAPSHOT_LIMIT_BYTES) -> dict[str, str] | None:
    """Save every named, trainable Parameter alive now to ``folder``; return {parameter name: .npy path}.

    Returns None when they hold more than ``limit`` bytes (nothing is written then). Names held by several
    Parameter objects are left out: which one a graph uses is unknown.
    """
    from mindspore import Parameter

    found: dict[str, list] = {}
    for obj in gc.get_objects():
        try:
            if isinstance(obj, Parameter) and obj.requires_grad and not obj.name.startswith("Parameter#"):
                found.setdefault(obj.name, []).append(obj)
        except ReferenceError:  # a weak proxy whose object is gone
            continue
    unique = {name: params[0] for name, params in found.items() if len(params) == 1}
    if sum(param.nbytes for param in unique.values()) > limit:
        return None
    os.makedirs(folder, exist_ok=True)
    paths = {}
    for index, (name, param) in enumerate(sorted(unique.items())):
        paths[name] = os.path.join(folder, f"{index}.npy")
        np.save(paths[name], param.asnumpy())
    return paths
