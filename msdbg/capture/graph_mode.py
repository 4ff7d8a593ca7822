"""``msdbg run --graph-mode``: run a PyNative script in graph mode, and name graphs that recompile every call.

Graph mode is set before the script runs; a later ``set_context(mode=PYNATIVE_MODE)`` by the script is dropped
(with one note), its other settings kept. In graph mode each Cell or function called from Python compiles once
per distinct set of constant arguments: a Python number that changes every step makes a new graph every step
(slow, and each one a new graph in the dump). MindSpore checks every fresh compile in ``_check_recompile``;
msdbg wraps it to count compiles per call site and to name the argument whose value keeps changing.
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable

from msdbg.capture.callsite import user_call_site

RECOMPILES_NOTED = 3  # compiles of one call site before the note


def force_graph_mode(note: Callable[[str], None]) -> Callable[[], None]:
    """Set graph mode, keep it against the script's requests, watch recompiles; return a function undoing it."""
    import mindspore as ms
    from mindspore import context

    from msdbg.capture.barrier import _api_module

    api = _api_module()
    original_set_context = context.set_context
    original_check = api._check_recompile
    original_set_context(mode=ms.GRAPH_MODE)
    _first_eager_op()
    told = [False]

    @functools.wraps(original_set_context)
    def set_context(**kwargs: Any) -> Any:
        if kwargs.get("mode", ms.GRAPH_MODE) != ms.GRAPH_MODE:
            kwargs.pop("mode")
            if not told[0]:
                told[0] = True
                note(f"{user_call_site()} asks for PyNative mode; --graph-mode keeps graph mode")
        return original_set_context(**kwargs) if kwargs else None

    watch = _RecompileWatch(note)

    @functools.wraps(original_check)
    def check_recompile(obj: Any, compile_args: Any, kwargs: Any, full_function_name: str, create_time: Any,
                        echo_function_name: str) -> Any:
        try:
            watch.compiled(echo_function_name, tuple(compile_args))
        except Exception as exc:  # a note must never end the training
            print(f"msdbg: internal error while watching recompiles: {exc!r}", file=sys.stderr)
        return original_check(obj, compile_args, kwargs, full_function_name, create_time, echo_function_name)

    owners = [module for module in (ms, context) if getattr(module, "set_context", None) is original_set_context]
    for module in owners:
        module.set_context = set_context
    api._check_recompile = check_recompile

    def uninstall() -> None:
        for module in owners:
            module.set_context = original_set_context
        api._check_recompile = original_check

    return uninstall


def _first_eager_op() -> None:
    """Run one tiny op outside any graph. MindSpore 2.10 built against NumPy 1.x, run with NumPy 2, fails the
    first such op in graph mode (an extension import raises; measured) and runs every later one: taking that
    failure here keeps it from ending the script at its first Tensor expression."""
    import numpy as np
    import mindspore as ms

    one = ms.Tensor(np.ones(1, np.float32))
    try:
        one * one
    except (SystemError, ImportError):
        pass


class _RecompileWatch:
    """Compiles per (graph name, user call site); one note per call site that keeps compiling."""

    def __init__(self, note: Callable[[str], None]):
        self.note = note
        self.compiles: dict[tuple[str, str], list[tuple]] = {}
        self.noted: set[tuple[str, str]] = set()

    def compiled(self, name: str, args: tuple) -> None:
        site = user_call_site()
        key = (name, site)
        seen = self.compiles.setdefault(key, [])
        seen.append(tuple(_constant_view(arg) for arg in args))
        del seen[:-RECOMPILES_NOTED]
        if len(seen) >= RECOMPILES_NOTED and key not in self.noted:
            self.noted.add(key)
            self.note(f"graph '{_short_name(name)}' called at {site} was compiled again at each of {RECOMPILES_NOTED} calls "
                      f"({_what_changes(seen)}); each compile is a new graph: pass values that change as Tensors "
                      "(or ms.mutable) and create Cells and jit functions once")


def _constant_view(arg: Any) -> Any:
    """What of an argument is a compile-time constant: Python scalars and strings, not tensors."""
    if isinstance(arg, (bool, int, float, str)) or arg is None:
        return arg
    if isinstance(arg, (tuple, list)):
        return tuple(_constant_view(item) for item in arg)
    return type(arg).__name__


def _what_changes(compiles: list[tuple]) -> str:
    changing = [i for i in range(min(len(c) for c in compiles)) if len({repr(c[i]) for c in compiles}) > 1]
    if not changing:
        return "same argument values: a new Cell or function object, or a Python value it reads, each call"
    parts = [f"argument {i + 1} was " + ", ".join(repr(c[i]) for c in compiles) for i in changing]
    return "; ".join(parts)


def _short_name(echo_name: str) -> str:
    """``after_grad`` from MindSpore's 'function "after_grad" at the file ..., line N' (Cells: the class name)."""
    parts = echo_name.split('"')
    return parts[1] if echo_name.startswith("function") and len(parts) > 2 else echo_name
