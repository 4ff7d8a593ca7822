"""What a training did outside every captured graph: PyNative backward passes and optimizer calls.

MindSpore runs in PyNative mode unless a script asks for graph mode or decorates its step with ``@ms.jit``.
Graph capture (dump + barrier) sees nothing of such a step, so a run could look clean while its forward and
backward passes were never checked. Two MindSpore entry points tell: every PyNative backward pass goes
through ``_PyNativeExecutor.grad`` (``value_and_grad``, ``grad``, ``GradOperation``, ``TrainOneStepCell``), and
every optimizer is an ``nn.Optimizer`` called from Python. Either one at top level (not inside a graph that
msdbg captures) is a training step the graph capture did not see.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from typing import Any, Callable

GRAPH_MODE_HINT = ("use 'msdbg run --graph-mode SCRIPT' to capture them as graphs, or decorate the training step "
                   "with @ms.jit")


@dataclass
class Coverage:
    """Counts of training work no captured graph held, and whether msdbg recorded it itself."""

    pynative_backward: int = 0
    pynative_updates: int = 0
    recorded_natively: bool = False  # msdbg's PyNative hooks recorded those calls (capture/pynative)

    @property
    def uncaptured(self) -> bool:
        """Forward and backward passes ran in PyNative and nothing recorded them."""
        return self.pynative_backward > 0 and not self.recorded_natively

    def message(self) -> str:
        """The one line that says what was not captured and what to do."""
        updates = (f", {self.pynative_updates} optimizer call{'s' if self.pynative_updates != 1 else ''} "
                   "outside any graph" if self.pynative_updates else "")
        return (f"the forward and backward passes ran in PyNative mode and were not captured "
                f"({self.pynative_backward} backward pass{'es' if self.pynative_backward != 1 else ''}{updates}); "
                f"{GRAPH_MODE_HINT}, or run without --no-pynative to record the PyNative calls")


def install(coverage: Coverage, in_graph: Callable[[], bool], on_first: Callable[[str], None]
            ) -> Callable[[], None]:
    """Count PyNative backward passes and optimizer calls made outside a captured graph into ``coverage``;
    call ``on_first(message)`` once, at the first uncaptured backward pass. Return a function that undoes it."""
    from mindspore import nn

    from msdbg.capture.barrier import _api_module

    executor = _api_module()._PyNativeExecutor
    saved = [(executor, "grad", executor.__dict__["grad"]),
             (nn.Optimizer, "__call__", nn.Optimizer.__dict__.get("__call__"))]
    told = [False]

    def count_backward() -> None:
        if in_graph():
            return
        coverage.pynative_backward += 1
        if coverage.uncaptured and not told[0]:
            told[0] = True
            on_first(coverage.message())

    def count_update() -> None:
        if not in_graph():
            coverage.pynative_updates += 1

    executor.grad = _counting(executor.grad, count_backward)
    own_call = saved[1][2]
    nn.Optimizer.__call__ = _counting(  # Cell.__call__ looked up at each call: other hooks may wrap it later
        own_call if own_call is not None else (lambda *args, **kwargs: nn.Cell.__call__(*args, **kwargs)), count_update)

    def uninstall() -> None:
        for owner, attribute, original in saved:
            if original is None:
                delattr(owner, attribute)
            else:
                setattr(owner, attribute, original)

    return uninstall


def _counting(original: Callable[..., Any], count: Callable[[], None]) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            count()
        except Exception as exc:  # counting must never end the training
            print(f"msdbg: internal error while counting PyNative steps: {exc!r}", file=sys.stderr)
        return original(*args, **kwargs)

    return wrapper
