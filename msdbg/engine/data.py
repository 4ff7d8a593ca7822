"""Checks on the data a step was fed: which samples of a batch hold NaN/Inf, and the class labels a
classification loss receives (out of range, imbalanced, unshuffled).

The graph says which data input is a loss's label and how many classes the logits have; the label tensors are
small, so each step's labels are read whole. What is kept across steps is one count per class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from msdbg.engine.hits import Hit
from msdbg.engine.watchpoints import Watchpoint
from msdbg.store.dumpdir import TensorEntry
from msdbg.store.graph import Graph, Node

#: Ops that take class indices: op type -> (slot of the logits/scores, slot of the labels).
INDEX_LABEL_OPS = {"SparseSoftmaxCrossEntropyWithLogits": (0, 1), "NLLLoss": (0, 1)}
#: OneHot(indices, depth, on, off): its own output's last axis is the number of classes.
ONE_HOT = "OneHot"
_MAX_LISTED = 5
#: label_unshuffled hits only where a run of one-class batches this unlikely would be needed under shuffling.
UNSHUFFLED_CHANCE = 1e-4


@dataclass(frozen=True)
class LabelInput:
    """A data input used as class labels: the parameter, the op reading it and the number of classes."""

    param: str
    consumer: Node
    classes: int | None


def label_inputs(graph: Graph) -> dict[str, LabelInput]:
    """The data inputs of the graph that a loss (or OneHot) reads as class indices, by parameter name."""
    found: dict[str, LabelInput] = {}
    for node in graph.nodes.values():
        if node.op_type in INDEX_LABEL_OPS:
            scores_slot, label_slot = INDEX_LABEL_OPS[node.op_type]
            scores = graph.resolve(node.inputs[scores_slot]) if scores_slot < len(node.inputs) else None
            classes = scores.shape[-1] if scores is not None and scores.shape else None
        elif node.op_type == ONE_HOT:
            label_slot, classes = 0, node.shape[-1] if node.shape else None
        else:
            continue
        source = graph.resolve(node.inputs[label_slot]) if label_slot < len(node.inputs) else None
        if source is not None and source.is_parameter and graph.param_category.get(source.name) == "input":
            found.setdefault(source.name, LabelInput(source.name, node, classes))
    return found


@dataclass
class LabelHistory:
    """Across steps, per (rank, net, graph, label parameter): class counts and the run of one-class batches."""

    counts: dict[tuple, np.ndarray] = field(default_factory=dict)
    steps: dict[tuple, int] = field(default_factory=dict)
    one_class_run: dict[tuple, int] = field(default_factory=dict)
    reported: set[tuple] = field(default_factory=set)


def check_labels(entries: list[TensorEntry], graph: Graph | None, watchpoints: list[Watchpoint],
                 history: LabelHistory, read: Callable[[TensorEntry], np.ndarray] = TensorEntry.load,
                 inputs: dict[str, LabelInput] | None = None) -> list[Hit]:
    """Hits of the label conditions on this step's label inputs (``inputs``: label_inputs(graph), when known);
    ``read`` gives a tensor's values (the evaluation's own copy when it read the file already)."""
    if graph is None or not watchpoints:
        return []
    inputs = label_inputs(graph) if inputs is None else inputs
    hits = []
    for entry in entries:
        label = inputs.get(entry.param) if entry.category == "input" and entry.io == "output" else None
        if label is None or entry.stats is not None:
            continue
        watching = [w for w in watchpoints if w.watches(entry)]
        if not watching:
            continue
        values = np.asarray(read(entry)).reshape(-1)
        if not np.issubdtype(values.dtype, np.integer):
            continue
        key = (entry.step.rank, entry.step.net, entry.step.graph, label.param)
        counts = _count(values, label.classes, history, key)
        for watchpoint in watching:
            reasons = _JUDGES[watchpoint.condition.name](values, label, counts, history, key, watchpoint.params)
            if reasons:
                stats = {"size": int(values.size), "min": int(values.min(initial=0)), "max": int(values.max(initial=0)),
                         "classes": label.classes}
                source = label.consumer.user_source()
                hits.append(Hit(watchpoint.number, watchpoint.condition.name, entry, stats, dict(watchpoint.params),
                                tuple(reasons), source=str(source) if source else None))
    return hits


def _count(values: np.ndarray, classes: int | None, history: LabelHistory, key: tuple) -> np.ndarray | None:
    """Add this batch's in-range labels to the run's class counts; track runs of one-class batches."""
    history.steps[key] = history.steps.get(key, 0) + 1
    single = values.size > 1 and values.min() == values.max()
    history.one_class_run[key] = history.one_class_run.get(key, 0) + 1 if single else 0
    if not classes:
        return None
    in_range = values[(values >= 0) & (values < classes)]
    batch = np.bincount(in_range, minlength=classes)[:classes]
    history.counts[key] = history.counts.get(key, np.zeros(classes, np.int64)) + batch
    return history.counts[key]


def _out_of_range(values, label, counts, history, key, params) -> list[str]:
    if not label.classes:
        return []
    bad = values[(values < 0) | (values >= label.classes)]
    if not bad.size:
        return []
    shown = ", ".join(str(v) for v in np.unique(bad)[:_MAX_LISTED])
    return [f"{bad.size} of {values.size} labels outside [0, {label.classes}) ({shown}) for "
            f"{label.consumer.op_type} {label.consumer.full_name} with {label.classes} classes"]


def _imbalance(values, label, counts, history, key, params) -> list[str]:
    if counts is None or key + ("imbalance",) in history.reported or history.steps[key] < params["min_steps"]:
        return []
    total = int(counts.sum())
    rare = [(cls, int(n)) for cls, n in enumerate(counts) if total and 100.0 * n / total < params["class_percentage_lt"]]
    if not rare:
        return []
    history.reported.add(key + ("imbalance",))
    listed = ", ".join(f"class {cls}: {n} ({100.0 * n / total:.2g}%)" for cls, n in rare[:_MAX_LISTED])
    return [f"over {history.steps[key]} batches ({total} labels) {listed} "
            f"< {params['class_percentage_lt']:g}% (class_percentage_lt)"]


def _unshuffled(values, label, counts, history, key, params) -> list[str]:
    run = history.one_class_run[key]
    if run < _runs_needed(values.size, label.classes, params["single_class_steps_ge"]) \
            or key + ("unshuffled",) in history.reported:
        return []
    history.reported.add(key + ("unshuffled",))
    return [f"{run} batches in a row each hold one class only (this one: all {int(values[0])}): "
            "the data is likely sorted by label, not shuffled"]


def _runs_needed(batch: int, classes: int | None, at_least: float) -> float:
    """How many one-class batches in a row make shuffled data implausible: with C equally likely classes a batch
    of n is one class with probability C^(1-n); the run must be below UNSHUFFLED_CHANCE (2 classes if unknown)."""
    chance = max(classes or 2, 2) ** (1 - batch) if batch > 1 else 1.0
    if chance >= 1.0:
        return math.inf
    return max(at_least, math.ceil(math.log(UNSHUFFLED_CHANCE) / math.log(chance)))


_JUDGES = {"label_out_of_range": _out_of_range, "label_imbalance": _imbalance, "label_unshuffled": _unshuffled}


def bad_samples(array: np.ndarray) -> str | None:
    """Which samples (indices along the first axis) of a data batch hold NaN or Inf, as a short phrase."""
    if array.ndim == 0 or not np.issubdtype(array.dtype, np.floating):
        return None
    finite = np.isfinite(np.asarray(array).reshape(array.shape[0], -1)).all(axis=1)
    bad = np.flatnonzero(~finite)
    if not bad.size:
        return None
    shown = ", ".join(str(i) for i in bad[:_MAX_LISTED]) + (" ..." if bad.size > _MAX_LISTED else "")
    return f"NaN/Inf in sample{'s' if bad.size > 1 else ''} {shown} of the batch ({bad.size} of {array.shape[0]})"
