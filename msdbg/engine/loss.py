"""Which tensor of a step is the loss, and which are the learning rate and the loss scale.

One place for this logic: ``diagnose`` (a loss of 0), the flight recorder (the loss of every step) and
``plot loss`` all use it.
"""

from __future__ import annotations

import functools
import math
from typing import Iterable

from msdbg.engine.stats import SUMMARY_NEEDS, TensorStats, compute_stats
from msdbg.store.dumpdir import TensorEntry
from msdbg.store.graph import Graph, Node

REDUCTIONS = {"ReduceMean", "ReduceSum"}
_PLUMBING = {"MakeTuple", "Depend", "Load", "TupleGetItem"}
#: Scopes of the backward pass and of expanded composite ops, never the forward loss.
_NOT_FORWARD = ("Gradients", "Expand")
LEARNING_RATE_NAMES = {"learning_rate", "lr"}
LOSS_SCALE_NAMES = {"scale_sense", "loss_scale", "scale_value"}


def in_loss_cell(node: str) -> bool:
    """Inside a loss cell's scope (``.../loss_fn-MSELoss/...``), not merely under ``WithLossCell``."""
    scopes = node.split("/")[:-1]
    return any("loss" in part.lower() and not part.startswith("network-WithLossCell") for part in scopes)


def is_loss_value(entry: TensorEntry, size: int | None) -> bool:
    """A loss value: an activation inside a loss cell's scope, or a scalar mean/sum (``size`` elements)."""
    if entry.category != "activation":
        return False
    return in_loss_cell(entry.node) or (entry.op_type in REDUCTIONS and size == 1)


def find_loss(entries: list[TensorEntry], graph: Graph | None = None) -> TensorEntry | None:
    """The step's loss tensor: the output of its graph's loss node (see loss_node) when the graph is known, else
    the last forward scalar output that is a loss value, preferring one in a loss cell."""
    node = loss_node(graph) if graph is not None else None
    found = next((e for e in entries if e.graph_node is node and e.io == "output" and e.slot == 0), None) \
        if node is not None else None
    if found is not None:
        return found
    best, best_rank = None, None
    for entry in entries:
        if entry.io != "output" or entry.slot != 0 or entry.node.startswith(_NOT_FORWARD):
            continue
        size = _size(entry)
        if size != 1 or not is_loss_value(entry, size):
            continue
        rank = (in_loss_cell(entry.node), entry.order)
        if best_rank is None or rank > best_rank:
            best, best_rank = entry, rank
    return best


def find_scalar_parameter(entries: Iterable[TensorEntry], names: set[str]) -> TensorEntry | None:
    """A one-element parameter named one of ``names`` (last dotted part), e.g. the learning rate."""
    for entry in entries:
        if entry.file.is_parameter and entry.io == "output" and entry.param \
                and entry.param.rsplit(".", 1)[-1] in names and _size(entry) == 1:
            return entry
    return None


def _size(entry: TensorEntry) -> int | None:
    if entry.stats is not None:
        return entry.stats.size
    node = entry.graph_node
    if node is not None and entry.slot == 0:
        return math.prod(node.shape)
    return None


def step_scalars(entries: list[TensorEntry], recorded: list[tuple[TensorEntry, TensorStats]],
                 graph: Graph | None = None) -> tuple[TensorStats | None, float | None, float | None]:
    """The loss's statistics, the learning rate and the loss scale of a step, where its dump shows them.

    Statistics already computed for the step (``recorded``) are reused; the others are one-element tensors.
    """
    known = {id(entry): stats for entry, stats in recorded}

    def stats_of(entry: TensorEntry | None) -> TensorStats | None:
        if entry is None:
            return None
        if id(entry) in known:
            return known[id(entry)]
        if entry.stats is not None:
            return entry.stats
        return compute_stats(entry.load(), SUMMARY_NEEDS, dtype_hint=entry.dtype)

    def value_of(entry: TensorEntry | None) -> float | None:
        stats = stats_of(entry)
        return None if stats is None or stats.finite_count != 1 else stats.min

    return (stats_of(find_loss(entries, graph)), value_of(find_scalar_parameter(entries, LEARNING_RATE_NAMES)),
            value_of(find_scalar_parameter(entries, LOSS_SCALE_NAMES)))


@functools.lru_cache(maxsize=16)
def loss_node(graph: Graph) -> Node | None:
    """The graph's loss node: what the step returns when that is one element (a training step returns its loss),
    else a forward one-element loss value (a loss cell's output, or a scalar mean/sum), preferring a loss cell's,
    then the last in execution order."""
    returned = _returned_scalar(graph)
    if returned is not None:
        return returned
    best, best_rank = None, None
    for node in graph.nodes.values():
        if node.is_parameter or node.full_name.startswith(_NOT_FORWARD) or math.prod(node.shape) != 1:
            continue
        cell = in_loss_cell(node.full_name)
        if not (cell or node.op_type in REDUCTIONS):
            continue
        rank = (cell, graph.exec_index.get(node.name, -1))
        if best_rank is None or rank > best_rank:
            best, best_rank = node, rank
    return best


def _returned_scalar(graph: Graph) -> Node | None:
    """The first one-element value the graph returns: from its output (a node nothing consumes), through
    MakeTuple / Depend / Load to the op that computed it."""
    consumed = {name for node in graph.nodes.values() for name in node.inputs}
    outputs = [n for n in graph.nodes.values() if n.name not in consumed and n.op_type in _PLUMBING]
    if len(outputs) != 1:
        return None
    pending, seen = [outputs[0]], set()
    while pending:
        node = pending.pop(0)
        if node.name in seen:
            continue
        seen.add(node.name)
        if node.op_type in _PLUMBING:
            feeds = [graph.nodes[i] for i in node.inputs if i in graph.nodes]
            pending = (feeds[:1] if node.op_type == "Depend" else feeds) + pending
            continue
        if not node.is_parameter and math.prod(node.shape) == 1 and not node.full_name.startswith(_NOT_FORWARD):
            return node
    return None
