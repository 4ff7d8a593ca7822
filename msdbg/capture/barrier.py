"""The step barrier: call back into msdbg after every graph the training runs, with no change to the script.

Every graph-mode execution in MindSpore 2.x goes through one of two executors:
``_JitExecutor.__call__`` (functions decorated with ``@ms.jit``, custom training loops) and
``_CellGraphExecutor.run`` (a Cell called in GRAPH_MODE: ``Model.train`` with or without dataset sink
mode, ``TrainOneStepCell`` in a loop, ``Model.eval``). Wrapping both catches every step of both styles.
When the wrapped call returns, the device is synchronised so the step's dump folder is complete.
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Callable

_state = threading.local()


def _api_module():
    try:
        from mindspore.graph import api
    except ImportError:  # MindSpore < 2.8 kept the executors in common.api
        from mindspore.common import api
    return api


def _synchronize() -> None:
    """Wait for queued work: the executor's queue everywhere, the device streams on GPU/Ascend.

    ``ms.runtime.synchronize`` logs an error on CPU (it has no streams), so it is only called elsewhere.
    """
    import mindspore as ms

    _api_module()._pynative_executor.sync()
    if ms.get_context("device_target") != "CPU":
        ms.runtime.synchronize()


def _after(original: Callable[..., Any], on_graph_run: Callable[[], None]) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        depth = getattr(_state, "depth", 0)
        _state.depth = depth + 1
        try:
            result = original(*args, **kwargs)
        finally:
            _state.depth = depth
        if depth == 0:
            _synchronize()
            on_graph_run()
        return result

    wrapper.__msdbg_original__ = original  # type: ignore[attr-defined]
    return wrapper


def install(on_graph_run: Callable[[], None]) -> Callable[[], None]:
    """Call ``on_graph_run()`` after each top-level graph execution; return a function that undoes it."""
    api = _api_module()
    jit_executor, cell_executor = api._JitExecutor, api._CellGraphExecutor
    saved = [(jit_executor, "__call__", jit_executor.__call__), (cell_executor, "run", cell_executor.run)]
    for owner, attribute, original in saved:
        setattr(owner, attribute, _after(original, on_graph_run))

    def uninstall() -> None:
        for owner, attribute, original in saved:
            setattr(owner, attribute, original)

    return uninstall
