"""Native PyNative capture: record every MindSpore call of a PyNative training step, with its source line.

Like msprobe's PyNative dump, the public API is wrapped: the functions of ``mindspore.ops``, ``mindspore.mint``
and ``mindspore.mint.nn.functional``, the Tensor methods and operators, and ``Cell.__call__`` (every Cell's
forward). Unlike it, nothing is written or reduced while the step runs: a call keeps references to its output
tensors and the names of the calls that produced its inputs, and statistics are computed only for the tensors
a watchpoint watches, at the step's end, by the same engine as graph dumps. Only the outermost call is recorded
(``ops.log`` implemented with Tensor operators is one ``log`` call), only on the thread that installed the
hooks, only in PyNative mode and never inside a graph msdbg captures.

Step boundaries (the barrier): the return of an ``nn.Optimizer`` call (or of the outermost Cell around it,
e.g. ``TrainOneStepCell``), else the start of the next forward pass of ``value_and_grad``/``grad`` after a
backward pass (a hand-written update), else the script's end. The optimizer's inputs are recorded as the
gradients, its weights and state after it returns; a hand-written update's gradients are the outputs of the
backward pass for the weights it was asked for.
"""

from __future__ import annotations

import functools
import inspect
import sys
import threading
from typing import Any, Callable

from mindspore import Parameter, Tensor, context

from msdbg.capture.barrier import in_graph_call
from msdbg.capture.callsite import source_line, user_frame
from msdbg.store.graph import is_optimizer_state_name
from msdbg.store.pynative import Call, PyNativeSteps

_get_mode, PYNATIVE_MODE = context._get_mode, context.PYNATIVE_MODE
MAX_CALLS_WITHOUT_BACKWARD = 20000  # a forward-only loop (evaluation) never closes a step: drop its calls
_SKIPPED_TENSOR_METHODS = {"asnumpy", "numpy", "item", "tolist", "shape", "dtype", "size", "ndim", "init_data",
                           "set_dtype", "data_sync", "asnumpy_of_slice_persistent_data", "contiguous",
                           "is_contiguous", "__bool__", "__len__", "__index__", "__int__", "__float__", "__repr__",
                           "__str__", "__format__", "__hash__", "__iter__", "__getstate__", "__setstate__",
                           "__array__", "__deepcopy__", "__copy__", "__reduce__", "__reduce_ex__", "__sizeof__",
                           "storage_offset", "stride", "strides", "nbytes", "itemsize", "has_init", "flush_from_cache",
                           "is_persistent_data", "is_init", "set_init_flag", "to_coo", "to_csr", "assign_value",
                           "set_cast_dtype", "offload", "offload_file_path", "move_to", "_offload", "data_ptr",
                           "get_bytes", "from_numpy", "register_hook", "set_const_arg", "is_signed", "untyped_storage"}


class PyNativeRecorder:
    """Records the calls of the current PyNative step and hands each finished step to ``steps``."""

    def __init__(self, steps: PyNativeSteps, at_step_end: Callable[[], None],
                 keep_pre_update: Callable[[], bool] = lambda: False):
        self.steps, self.at_step_end, self.keep_pre_update = steps, at_step_end, keep_pre_update
        self.thread = threading.get_ident()
        self.busy = False  # inside a recorded op, a backward pass or an optimizer: nested calls are not recorded
        self.cells: list[Any] = []  # the Cells being called, outermost first
        self.scope = "Default"  # "Default/" + their labels joined by "/"
        self.reported = False
        self._reset()

    def _reset(self) -> None:
        self.calls: list[Call] = []
        self.producer: dict[int, str] = {}
        self.counters: dict[tuple[str, str], int] = {}
        self.backward = False
        self.close_pending = False
        self.gradients: dict[str, str] = {}  # parameter name -> its Gradient call
        self.last_value: str | None = None  # the last call that computed something (the loss, before a backward)
        self.optimized = False  # an nn.Optimizer made this step's update
        self.parameters: dict[int, list] = {}  # id -> [Parameter, category, its node name in this step]
        self.parameter_names: set[str] = set()
        self.before_update: dict[int, Any] = {}  # id -> a copy of the parameter when first read in this step

    # ----- when to record -----------------------------------------------------------------------
    def recording(self) -> bool:
        return (not self.busy and threading.get_ident() == self.thread and not in_graph_call()
                and _get_mode() == PYNATIVE_MODE)

    # ----- recording ----------------------------------------------------------------------------
    def record(self, op_type: str, args: tuple, kwargs: dict, out: Any, label: str | None = None) -> None:
        """One call that returned ``out`` (``label``: a Cell's name in scopes, ``fc1-Dense``)."""
        scope = self.scope
        inputs = [self._producer(tensor, scope) for tensor in _tensors(args, kwargs)]
        outputs = [t for t in _flatten(out) if isinstance(t, Tensor)]
        # a Cell returns what its last inner call produced, an in-place op its input: that call is an input too
        inputs += [self.producer[id(t)] for t in outputs if id(t) in self.producer]
        source = source_line(user_frame(2))
        self._add(op_type, scope, inputs, outputs, source, label=label)
        if not self.backward and len(self.calls) > MAX_CALLS_WITHOUT_BACKWARD:
            self._reset()

    def _add(self, op_type: str, scope: str, inputs: list[str], outputs: list[Any], source: Any,
             category: str = "activation", param: str | None = None, name: str | None = None,
             label: str | None = None) -> str:
        if name is None:
            label = label or op_type
            count = self.counters.get((scope, label), 0)
            self.counters[(scope, label)] = count + 1
            name = f"{scope}/{label}-op{count}"
        self.calls.append(Call(name, op_type, scope, inputs, outputs, source, category, param))
        if category == "activation":
            self.last_value = name
        for tensor in outputs:
            self.producer[id(tensor)] = name
        return name

    def _producer(self, tensor: Any, scope: str) -> str:
        """The call that produced a tensor: a recorded call, a parameter, or a new data input."""
        name = self.producer.get(id(tensor))
        if name is not None:
            return name
        if _is_parameter(tensor):
            return self._parameter(tensor, "weight")
        return self._add("Input", scope, [], [tensor], None, category="input")

    def _parameter(self, parameter: Any, category: str) -> str:
        """A parameter's node name in this step: its name when first seen, made unique (an optimizer makes its
        state as clones named like the weights, renamed afterwards: see _renamed_parameters)."""
        known = self.parameters.get(id(parameter))
        if known is None:
            name = _name_of(parameter)
            while name in self.parameter_names:
                name += "'"
            self.parameter_names.add(name)
            known = self.parameters[id(parameter)] = [parameter, category, name]
            self.producer[id(parameter)] = name
            if self.keep_pre_update():
                self.before_update[id(parameter)] = parameter.asnumpy().copy()
        elif category == "optimizer_state":
            known[1] = category
        return known[2]

    def _renamed_parameters(self) -> dict[str, str]:
        """Node names of parameters whose name changed since they were first seen -> their name now (unique)."""
        current = {id(parameter): _name_of(parameter, refresh=True) for parameter, _, _ in self.parameters.values()}
        taken = {name for parameter, _, name in self.parameters.values() if current[id(parameter)] == name}
        renamed = {}
        for parameter, _, name in self.parameters.values():
            if current[id(parameter)] != name:
                final = current[id(parameter)]
                while final in taken:
                    final += "'"
                taken.add(final)
                renamed[name] = final
        return renamed

    def gradients_for(self, weights: Any, grads: Any) -> None:
        """The gradients an update receives, one per weight, in the weights' order; each computed from the last
        value before the backward pass (the loss)."""
        weights = [w for w in _flatten(weights) if _is_parameter(w)]
        grads = [g for g in _flatten(grads) if _is_tensor(g)]
        if not weights or len(grads) < len(weights):
            return
        for weight, grad in zip(weights, grads[len(grads) - len(weights):]):
            self._parameter(weight, "weight")
            name = _name_of(weight)
            if name not in self.gradients:
                loss = [self.last_value] if self.last_value is not None else []
                self.gradients[name] = self._add("Gradient", "Gradients", loss, [grad], None, "gradient", name,
                                                 name=f"Gradients/{name}")

    def _optimizer_updates(self) -> None:
        """One ``ApplyUpdate`` node per parameter an optimizer updated, computed from the gradient of its weight
        (``moment1.fc1.weight`` from that of ``fc1.weight``): trace-back walks from a parameter to its gradient."""
        for _, _, name in self.parameters.values():
            weight = name if name in self.gradients else next(
                (w for w in self.gradients if name.endswith("." + w)), None)
            if weight is not None:
                self._add("ApplyUpdate", "Update", [name, self.gradients[weight]], [], None, name=f"Update/{name}")

    def optimizer_state(self, optimizer: Any) -> None:
        weights = {id(p) for p in optimizer.parameters}
        for parameter in optimizer.get_parameters():
            self._parameter(parameter, "weight" if id(parameter) in weights else "optimizer_state")

    # ----- step boundaries ----------------------------------------------------------------------
    def step_may_end(self) -> None:
        """After an update: end the step now, or when the outermost Cell returns."""
        self.close_pending = True
        if not self.cells:
            self.close_step()

    def close_step(self) -> None:
        """The barrier of a PyNative step: hand its calls to the source and evaluate it."""
        if not self.backward:
            return
        renamed = self._renamed_parameters()
        if renamed:
            for call in self.calls:
                call.inputs = [renamed.get(name, name) for name in call.inputs]
            for known in self.parameters.values():
                known[2] = renamed.get(known[2], known[2])
        if self.optimized:
            self._optimizer_updates()
        reads = []  # first in the step: the engine takes the first reader's input as the value before the update
        for key, (parameter, category, name) in self.parameters.items():
            category = "optimizer_state" if is_optimizer_state_name(name) else category
            self.calls.append(Call(name, "Parameter", "", [], [parameter], None, category, name))
            if key in self.before_update:
                reads.append(Call(f"Read/{name}", "ReadParameter", "Read", [name], [], None, category, name,
                                  held_input=self.before_update[key]))
        calls = reads + self.calls
        self._reset()
        self.steps.add(calls)
        self.at_step_end()

    def report(self, exc: BaseException) -> None:
        if not self.reported:
            self.reported = True
            print(f"msdbg: internal error while recording a PyNative call (recording goes on): {exc!r}",
                  file=sys.stderr)


def install(recorder: PyNativeRecorder) -> Callable[[], None]:
    """Wrap MindSpore's PyNative entry points for ``recorder``; return a function that undoes it."""
    import mindspore as ms
    from mindspore import mint, nn, ops
    from mindspore.ops.composite import base as composite_base

    from msdbg.capture.barrier import _api_module

    saved: list[tuple[Any, str, Any]] = []

    def replace(owner: Any, attribute: str, wrapper: Any) -> None:
        saved.append((owner, attribute, owner.__dict__[attribute] if attribute in owner.__dict__ else _MISSING))
        setattr(owner, attribute, wrapper)

    def uninstall() -> None:
        for owner, attribute, original in reversed(saved):
            if original is _MISSING:
                delattr(owner, attribute)
            else:
                setattr(owner, attribute, original)

    try:
        for module in (ops, mint, getattr(mint.nn, "functional", None)):
            if module is None:
                continue
            for name, value in list(vars(module).items()):
                if not name.startswith("_") and inspect.isfunction(value):
                    replace(module, name, _op_wrapper(recorder, value, name))
        tensor_base = ms.Tensor.__mro__[1]
        for name, value in list(vars(tensor_base).items()):
            if (callable(value) and name not in _SKIPPED_TENSOR_METHODS and not isinstance(value, (type, property))
                    and (not name.startswith("_") or _is_operator(name)) and name not in vars(ms.Tensor)):
                replace(ms.Tensor, name, _op_wrapper(recorder, value, name))
        wrapped = {attribute for _, attribute, _ in saved}
        for name, value in list(vars(ms.Tensor).items()):
            if inspect.isfunction(value) and not name.startswith("_") and name not in _SKIPPED_TENSOR_METHODS | wrapped:
                replace(ms.Tensor, name, _op_wrapper(recorder, value, name))
        replace(nn.Cell, "__call__", _cell_wrapper(recorder, nn.Cell.__call__))
        executor = _api_module()._PyNativeExecutor
        replace(executor, "grad", _backward_wrapper(recorder, executor.grad))
        replace(composite_base, "_pynative_forward_run",
                _forward_start_wrapper(recorder, composite_base._pynative_forward_run))
    except BaseException:
        uninstall()  # all or nothing
        raise
    return uninstall


_MISSING = object()


def _op_wrapper(recorder: PyNativeRecorder, original: Callable[..., Any], name: str) -> Callable[..., Any]:
    op_type = _op_type(name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if recorder.busy or not recorder.recording():
            return original(*args, **kwargs)
        recorder.busy = True
        try:
            out = original(*args, **kwargs)
        finally:
            recorder.busy = False
        try:
            recorder.record(op_type, args, kwargs, out)
        except Exception as exc:  # recording must never change or end the training
            recorder.report(exc)
        return out

    return wrapper


def _cell_wrapper(recorder: PyNativeRecorder, original: Callable[..., Any]) -> Callable[..., Any]:
    from mindspore import nn

    @functools.wraps(original)
    def call(cell: Any, *args: Any, **kwargs: Any) -> Any:
        if recorder.busy or not recorder.recording():
            return original(cell, *args, **kwargs)
        if isinstance(cell, nn.Optimizer):
            return _optimizer_call(recorder, original, cell, args, kwargs)
        label = _cell_label(cell, recorder.cells[-1] if recorder.cells else None)
        recorder.cells.append(cell)
        outer_scope = recorder.scope
        recorder.scope = f"{outer_scope}/{label}"
        try:
            out = original(cell, *args, **kwargs)
        finally:
            recorder.cells.pop()
            recorder.scope = outer_scope
        try:
            recorder.record(type(cell).__name__, args, kwargs, out, label=label)
            if recorder.close_pending and not recorder.cells:
                recorder.close_step()
        except Exception as exc:
            recorder.report(exc)
        return out

    return call


def _optimizer_call(recorder: PyNativeRecorder, original: Callable[..., Any], optimizer: Any, args: tuple,
                    kwargs: dict) -> Any:
    try:
        if args:
            recorder.gradients_for(optimizer.parameters, args[0])
        recorder.optimizer_state(optimizer)
        recorder.optimized = True
    except Exception as exc:
        recorder.report(exc)
    recorder.busy = True
    try:
        out = original(optimizer, *args, **kwargs)
    finally:
        recorder.busy = False
    recorder.step_may_end()
    return out


def _backward_wrapper(recorder: PyNativeRecorder, original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def grad(executor: Any, obj: Any, grad_op: Any, weights: Any, *args: Any) -> Any:
        if recorder.busy or not recorder.recording():
            return original(executor, obj, grad_op, weights, *args)
        recorder.busy = True
        try:
            out = original(executor, obj, grad_op, weights, *args)
        finally:
            recorder.busy = False
        recorder.backward = True
        try:
            recorder.gradients_for(weights, out)
        except Exception as exc:
            recorder.report(exc)
        return out

    return grad


def _forward_start_wrapper(recorder: PyNativeRecorder, original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def forward_run(*args: Any, **kwargs: Any) -> Any:
        if recorder.backward and not recorder.cells and recorder.recording():
            recorder.close_step()  # a hand-written update: the step ended where the next forward pass starts
        return original(*args, **kwargs)

    return forward_run


def _cell_label(cell: Any, parent: Any) -> str:
    """``fc1-Dense`` for the Cell a parent holds as ``self.fc1``, else the class name (cached per Cell)."""
    cached = _labels.get(id(cell))
    if cached is not None and cached[0] is cell:
        return cached[1]
    kind = type(cell).__name__
    children = getattr(parent, "_cells", None) or {}
    attribute = next((name for name, child in children.items() if child is cell), None)
    label = f"{attribute}-{kind}" if attribute else kind
    _labels[id(cell)] = (cell, label)
    return label


_labels: dict[int, tuple[Any, str]] = {}


def _op_type(name: str) -> str:
    """``log`` -> ``Log``, ``__mul__`` -> ``Mul``, ``cross_entropy`` -> ``CrossEntropy``."""
    return "".join(part[:1].upper() + part[1:] for part in name.strip("_").lstrip("r").split("_")) \
        if _is_operator(name) else "".join(part[:1].upper() + part[1:] for part in name.split("_"))


_OPERATORS = {"add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "neg", "abs", "and", "or", "xor",
              "lt", "le", "gt", "ge", "eq", "ne", "getitem", "setitem", "invert", "iadd", "isub", "imul", "itruediv",
              "pos"}


def _is_operator(name: str) -> bool:
    if not (name.startswith("__") and name.endswith("__")):
        return False
    core = name[2:-2]
    return core in _OPERATORS or (core.startswith("r") and core[1:] in _OPERATORS)


def _name_of(parameter: Any, refresh: bool = False) -> str:
    """A Parameter's name, read once per object (``Parameter.name`` waits for every queued PyNative op, so reading
    it during a step would serialise the step); ``refresh`` at the step's end, where waiting costs nothing."""
    cached = _names.get(id(parameter))
    if refresh or cached is None or cached[0] is not parameter:
        cached = _names[id(parameter)] = (parameter, parameter.name)
    return cached[1]


_names: dict[int, tuple[Any, str]] = {}


def _is_tensor(value: Any) -> bool:
    return isinstance(value, Tensor)


def _is_parameter(value: Any) -> bool:
    return isinstance(value, Parameter)


def _flatten(value: Any) -> list[Any]:
    if not isinstance(value, (tuple, list)):
        return [value]
    flat = []
    for part in value:
        if isinstance(part, (tuple, list)):
            flat.extend(_flatten(part))
        else:
            flat.append(part)
    return flat


def _tensors(args: tuple, kwargs: dict) -> list[Any]:
    values = _flatten(args) if not kwargs else _flatten([*args, *kwargs.values()])
    return [value for value in values if isinstance(value, Tensor)]
