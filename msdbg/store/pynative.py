"""Steps recorded from PyNative calls, held in memory: the newest few steps' tensors, entries and graph.

A recorded step is a list of calls in the order they returned (capture/pynative.py). Each call becomes a
graph node (named like a kernel: ``Default/Net/Log-op0``) whose inputs are the nodes that produced its input
tensors, and each of its output tensors an entry whose loader reads the tensor at evaluation time. Parameters
(weights, optimizer state) are nodes of their own, read at the step's end (after its update); a ``ReadParameter``
node holds, as its input, a copy of a parameter taken before the update when a watchpoint compares with it. The
gradients the update received are ``Gradient`` nodes labelled with their parameter.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

import numpy as np

from msdbg.store.dumpdir import PYNATIVE_NET, StepKey, TensorEntry
from msdbg.store.filenames import TensorFileName, dump_op_name
from msdbg.store.graph import Graph, Node, SourceLine

T = TypeVar("T")


@dataclass
class Call:
    """One recorded call: a MindSpore op, a Cell, a data input, a gradient or a parameter."""

    name: str  # unique in its step
    op_type: str
    scope: str
    inputs: list[str]  # names of the calls that produced its tensor inputs
    outputs: list[Any]  # the output tensors, kept until the step is dropped
    source: SourceLine | None = None
    category: str = "activation"
    param: str | None = None
    held_input: np.ndarray | None = None  # a copy of input 0 taken when it was read (a parameter before its update)


@dataclass
class _Step:
    entries: list[TensorEntry]
    graph: Graph
    derived: dict[Callable, object] = field(default_factory=dict)


class PyNativeSteps:
    """The StepSource of PyNative capture: the newest ``keep`` recorded steps."""

    def __init__(self, keep: int, rank: int = 0):
        self.keep, self.rank = keep, rank
        self.graph_errors: dict[tuple[int, int], str] = {}
        self._steps: OrderedDict[StepKey, _Step] = OrderedDict()
        self.recorded = 0

    def add(self, calls: list[Call]) -> StepKey:
        """Make a step of ``calls``; drop the oldest beyond ``keep``."""
        key = StepKey(self.rank, PYNATIVE_NET, 0, self.recorded)
        self.recorded += 1
        graph = Graph(0, [_node(call) for call in calls],
                      {call.name: True for call in calls if call.op_type == "Parameter"}, [c.name for c in calls])
        entries = [entry for order, call in enumerate(calls) for entry in _entries(key, call, order, graph)]
        self._steps[key] = _Step(entries, graph)
        while len(self._steps) > self.keep:
            self._steps.popitem(last=False)
        return key

    def ranks(self) -> list[int]:
        return [self.rank] if self._steps else []

    def steps(self) -> list[StepKey]:
        return list(self._steps)

    def owns(self, key: StepKey) -> bool:
        return key.net == PYNATIVE_NET

    def tensors(self, key: StepKey) -> list[TensorEntry]:
        step = self._steps.get(key)
        return step.entries if step is not None else []

    def derived(self, key: StepKey, build: Callable[[list[TensorEntry]], T]) -> T:
        step = self._steps[key]
        if build not in step.derived:
            step.derived[build] = build(step.entries)
        return step.derived[build]

    def graph_of(self, key: StepKey) -> Graph | None:
        step = self._steps.get(key)
        return step.graph if step is not None else None

    def loaded_graphs(self) -> list[Graph]:
        return [step.graph for step in self._steps.values()]


def _node(call: Call) -> Node:
    shape = tuple(call.outputs[0].shape) if call.outputs else ()
    return Node(call.name, call.name, call.op_type, call.scope, list(call.inputs), shape,
                [call.source] if call.source is not None else [])


def _entries(key: StepKey, call: Call, order: int, graph: Graph) -> list[TensorEntry]:
    node = graph.nodes[call.name]
    entries = []
    for slot, tensor in enumerate(call.outputs):
        dtype = str(tensor.dtype)
        file = TensorFileName(call.op_type, dump_op_name(call.name), 0, 0, order, "output", slot, "DefaultFormat",
                              dtype)
        entries.append(TensorEntry(key, f"<memory: {call.name} output {slot}>", file, call.name, call.op_type,
                                   call.category, call.param, order, node, loader=_loader(tensor)))
    if call.held_input is not None:
        held = call.held_input
        file = TensorFileName(call.op_type, dump_op_name(call.name), 0, 0, order, "input", 0, "DefaultFormat",
                              str(held.dtype))
        entries.append(TensorEntry(key, f"<memory: {call.name} input 0>", file, call.name, call.op_type,
                                   call.category, call.param, order, node, loader=lambda: held))
    return entries


def _loader(tensor: Any) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        array = tensor.asnumpy()
        array.flags.writeable = False
        return array

    return load
