"""Place the dumped kernels of a step in their graph: which graph node wrote each file, and in what order they ran.

MindSpore names a tensor file after the kernel that wrote it (its full name with ``/`` -> ``_``), but the names do
not always agree with the graph files:
- kernels created after the traced graph (a backward ``AddN``, ``Conv2DBackpropInput/Filter``, ...) get other
  ``-opN`` numbers in file names than in the ``.pb``/``.ir``/``execution_order`` (measured on MindSpore 2.10 CPU:
  ``Gradients_Default_AddN-op0`` for ``Gradients/Default/AddN-op1``; resnet18's ``Conv2DBackpropInput-op0..18``
  for ``-op19..37``);
- MindSpore 2.0 writes names without their scope (``Conv2D-op5``).

A *family* is a kernel's name without its ``-opN`` number (its scope and op type). A placement *fits* when the
op types and output sizes agree and the dump times agree with the graph's edges: no placed producer of the node
ran after the kernel, no placed consumer before it. Passes over the kernels not yet placed:
1. by name, for a family whose file names are all free graph kernels that fit. Names alone are not enough: in
   resnet18 the eight ``Expand/_SumExt/ReduceSum-op0..7`` files all carry graph names, but their dumped inputs
   show file op2 is graph op0, op0 is op1, op3 is op4, op1 is op3 (the times catch it: file op7 ran long before
   graph op7's producer);
2. by the last part of the name (``Conv2D-op5``), per op type, when each names exactly one free graph kernel and
   they fit;
3. by order, per family and then per op type, when both sides hold as many kernels: each file kernel in run order
   takes the first free graph kernel (execution order) that fits, one of its output size before one that cannot
   be told apart; all or none of a group. This gives the right node for every resnet18 ReduceSum above and every
   renumbered AddN/Conv2DBackprop kernel (checked against the dumped inputs).
A kernel no pass places is *unplaced* (None): trace-back then orders it by dump time only and never treats it as
having no ancestors.

The order kernels ran in within a step is that of their first file's dump timestamp (the execution_order file
lists independent kernels in another order than they ran).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Iterable

from msdbg.store.filenames import dump_op_name
from msdbg.store.graph import Graph, Node

_OP_NUMBER = re.compile(r"-op\d+$")


@dataclass(frozen=True)
class DumpedKernel:
    """One kernel as a step's files name it: op type, op name and its earliest dump timestamp."""

    op_type: str
    op_name: str
    first_timestamp: int


KernelKey = tuple[str, str]  # (op_type, op_name) as in the file name
ShapeOf = Callable[[KernelKey], "tuple[int, ...] | None"]


def family(name: str) -> str:
    """A kernel name without its ``-opN`` number."""
    return _OP_NUMBER.sub("", name)


def dumped_kernels(files: Iterable[tuple[str, str, int]]) -> list[DumpedKernel]:
    """The kernels of ``(op_type, op_name, timestamp)`` file fields, each with its earliest timestamp, in run order."""
    first: dict[KernelKey, int] = {}
    for op_type, op_name, timestamp in files:
        key = (op_type, op_name)
        if key not in first or timestamp < first[key]:
            first[key] = timestamp
    return [DumpedKernel(t, n, ts) for (t, n), ts in sorted(first.items(), key=lambda item: (item[1], item[0]))]


def place_kernels(kernels: list[DumpedKernel], graph: Graph, shape_of: ShapeOf) -> dict[KernelKey, Node | None]:
    """The graph node of every dumped kernel (parameters excluded), None where none can be told.

    ``kernels`` in run order; ``shape_of`` gives a kernel's first output shape from its file (None: unknown).
    """
    placer = _Placer(graph, shape_of)
    free = [k for k in kernels if k.op_type != "Parameter"]
    free = placer.by_name(free)
    free = placer.by_last_part(free)
    free = placer.by_order(free, lambda k: family(k.op_name), lambda n: family(dump_op_name(n.full_name)))
    free = placer.by_order(free, lambda k: k.op_type, lambda n: n.op_type)
    placed: dict[KernelKey, Node | None] = dict(placer.placed)
    placed.update(((k.op_type, k.op_name), None) for k in free)
    return placed


_FORWARDING = {"Load", "Depend", "TupleGetItem", "identity", "Identity"}  # graph plumbing that runs no kernel


class _Placer:
    """The passes of placement over one step's kernels, and what they have placed so far."""

    def __init__(self, graph: Graph, shape_of: ShapeOf):
        self.graph = graph
        self.shape_of = shape_of
        self.kernels = _graph_kernels(graph)
        self.free: dict[str, Node] = {node.name: node for node in self.kernels}  # in execution order
        self.placed: dict[KernelKey, Node] = {}
        self.ran_at: dict[str, int] = {}  # node name -> its kernel's first dump timestamp
        self.producers: dict[str, set[str]] = {node.name: self._producers(node) for node in self.kernels}
        self.consumers: dict[str, set[str]] = defaultdict(set)
        for name, sources in self.producers.items():
            for source in sources:
                self.consumers[source].add(name)

    def _producers(self, node: Node) -> set[str]:
        """The kernels whose outputs the node reads (through Load, Depend, TupleGetItem)."""
        found, stack, seen = set(), list(node.inputs), set()
        while stack:
            name = stack.pop()
            source = self.graph.nodes.get(name)
            if source is None or name in seen or source.is_parameter:
                continue
            seen.add(name)
            if source.op_type in _FORWARDING:
                stack.extend(source.inputs[:1])
            else:
                found.add(name)
        return found

    def take(self, group: list[DumpedKernel], nodes: list[Node]) -> None:
        for kernel, node in zip(group, nodes):
            self.placed[(kernel.op_type, kernel.op_name)] = node
            self.ran_at[node.name] = kernel.first_timestamp
            self.free.pop(node.name, None)

    def release(self, group: list[DumpedKernel]) -> None:
        for kernel in group:
            node = self.placed.pop((kernel.op_type, kernel.op_name))
            self.ran_at.pop(node.name, None)
            self.free[node.name] = node

    def fit(self, kernel: DumpedKernel, node: Node) -> int:
        """2: same op type and output size; 1: cannot be told apart; 0: differs."""
        if kernel.op_type != node.op_type:
            return 0
        return _fits(self.shape_of((kernel.op_type, kernel.op_name)), node.shape)

    def in_time(self, kernel: DumpedKernel, node: Node) -> bool:
        """Whether the node's placed producers ran before the kernel and its placed consumers after it."""
        when = kernel.first_timestamp
        return (all(self.ran_at.get(p, -1) < when for p in self.producers.get(node.name, ()))
                and all(self.ran_at.get(c, when + 1) > when for c in self.consumers.get(node.name, ())))

    def by_name(self, kernels: list[DumpedKernel]) -> list[DumpedKernel]:
        """Pass 1: families whose file names are free graph kernels of the same op type and size, kept where the
        dump times agree with the graph's edges (a name shared by two kernels of a family shows there)."""
        groups = _groups(kernels, lambda k: family(k.op_name))
        left, named = [], []
        for group in groups:
            nodes = [self.graph.node_for_dump(k.op_type, k.op_name) for k in group]
            if all(n is not None and n.name in self.free and self.fit(k, n) for k, n in zip(group, nodes)):
                self.take(group, nodes)
                named.append((group, nodes))
            else:
                left.extend(group)
        for group, nodes in named:
            if not all(self.in_time(k, n) for k, n in zip(group, nodes)):
                self.release(group)
                left.extend(group)
        return sorted(left, key=lambda k: k.first_timestamp)

    def by_last_part(self, kernels: list[DumpedKernel]) -> list[DumpedKernel]:
        """Pass 2: names without a scope (``Conv2D-op5``), per op type, when each is the last part of exactly one
        free graph kernel of that type, sizes fit and dump times agree with the graph's edges."""
        by_last: dict[tuple[str, str], list[Node]] = defaultdict(list)
        for node in self.free.values():
            by_last[(node.op_type, node.full_name.rsplit("/", 1)[-1])].append(node)
        left = []
        for group in _groups(kernels, lambda k: k.op_type):
            found = [by_last.get((k.op_type, k.op_name), []) for k in group]
            nodes = [candidates[0] for candidates in found if len(candidates) == 1]
            if (len(nodes) == len(group) and len({n.name for n in nodes}) == len(nodes)
                    and all(self.fit(k, n) for k, n in zip(group, nodes))):
                self.take(group, nodes)
                if not all(self.in_time(k, n) for k, n in zip(group, nodes)):
                    self.release(group)
                    left.extend(group)
            else:
                left.extend(group)
        return sorted(left, key=lambda k: k.first_timestamp)

    def by_order(self, kernels: list[DumpedKernel], kernel_group, node_group) -> list[DumpedKernel]:
        """Pass 3: per group with as many file kernels as free graph kernels, each file kernel (in run order) takes
        the first free graph kernel (in execution order) that fits its dump time and output size (a same size
        before one that cannot be told apart); all or none of a group."""
        nodes: dict[str, list[Node]] = defaultdict(list)
        for node in self.free.values():
            nodes[node_group(node)].append(node)
        left = []
        for group in _groups(kernels, kernel_group):
            candidates = list(nodes.get(kernel_group(group[0]), ()))
            chosen: list[Node] = []
            if len(candidates) == len(group):
                for kernel in group:
                    fits = [(self.fit(kernel, n), -i, n) for i, n in enumerate(candidates) if self.in_time(kernel, n)]
                    best = max(fits, default=(0, 0, None), key=lambda fit: fit[:2])
                    if best[0] == 0:
                        break
                    candidates.remove(best[2])
                    chosen.append(best[2])
                    self.take([kernel], [best[2]])
            if len(chosen) < len(group):
                self.release(group[:len(chosen)])
                left.extend(group)
        return sorted(left, key=lambda k: k.first_timestamp)


def _graph_kernels(graph: Graph) -> list[Node]:
    """The graph's kernels (nodes that run and may dump), in execution order."""
    if graph.exec_index:
        nodes = [graph.by_full_name[name] for name in graph.exec_index if name in graph.by_full_name]
        return [node for node in nodes if not node.is_parameter]
    return sorted((node for node in graph.nodes.values() if not node.is_parameter), key=_op_number)


def _groups(kernels: list[DumpedKernel], key) -> list[list[DumpedKernel]]:
    """Kernels grouped by ``key``, each group in run order."""
    groups: dict[str, list[DumpedKernel]] = defaultdict(list)
    for kernel in kernels:
        groups[key(kernel)].append(kernel)
    return list(groups.values())


def _fits(file_shape: tuple[int, ...] | None, node_shape: tuple[int, ...]) -> int:
    """How well a file's shape fits a graph node: 2 same element count, 1 cannot tell, 0 differs.

    Element counts, not shapes: MindSpore dumps a Reshape/Squeeze/ExpandDims output with its input's shape. A
    node shape ``()`` is a scalar or a tuple output (which the graph file gives no shape for).
    """
    if file_shape is None:
        return 1
    count = _count(file_shape)
    if not node_shape:
        return 2 if count == 1 else 1
    return 2 if count == _count(node_shape) else 0


def _count(shape: tuple[int, ...]) -> int:
    total = 1
    for dim in shape:
        total *= dim
    return total


def _op_number(node: Node) -> tuple[str, int]:
    """Family and ``-opN`` number: the graph order of kernels when the dump has no execution_order file."""
    match = re.search(r"-op(\d+)$", node.full_name)
    return (family(node.full_name), int(match[1]) if match else -1)
