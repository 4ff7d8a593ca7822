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


def _after(original: Callable[..., Any], on_graph_run: Callable[[], None],
           before: Callable[[], None]) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        depth = getattr(_state, "depth", 0)
        if depth == 0:
            before()
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


def in_graph_call() -> bool:
    """Whether this thread is inside a graph execution msdbg captures (a jit function or a graph-mode Cell)."""
    return getattr(_state, "depth", 0) > 0


def _once(action: Callable[[], None] | None) -> Callable[[], None]:
    done = [action is None]

    def run_once() -> None:
        if not done[0]:
            done[0] = True
            action()

    return run_once


def install(on_graph_run: Callable[[], None], before_first_compile: Callable[[], None] | None = None
            ) -> Callable[[], None]:
    """Call ``on_graph_run()`` after each top-level graph execution, and ``before_first_compile()`` once before
    the first graph compiles (MindSpore reads its dump configuration then); return a function that undoes it."""
    api = _api_module()
    jit_executor, cell_executor = api._JitExecutor, api._CellGraphExecutor
    first = _once(before_first_compile)
    saved = [(jit_executor, "__call__", jit_executor.__call__), (cell_executor, "run", cell_executor.run),
             (cell_executor, "compile", cell_executor.compile)]
    jit_executor.__call__ = _after(jit_executor.__call__, on_graph_run, first)
    cell_executor.run = _after(cell_executor.run, on_graph_run, first)
    cell_executor.compile = _before(cell_executor.compile, first)

    def uninstall() -> None:
        for owner, attribute, original in saved:
            setattr(owner, attribute, original)

    return uninstall


def _before(original: Callable[..., Any], action: Callable[[], None]) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        action()
        return original(*args, **kwargs)

    return wrapper
