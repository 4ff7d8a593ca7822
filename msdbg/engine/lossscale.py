"""Loss scaling: the steps a dynamic loss scaler skipped, and a loss scale set improperly.

With float16 gradients a dynamic loss scaler multiplies the loss by a scale S; when the gradients overflow it
skips the update and lowers S (``ms.amp.DynamicLossScaler.adjust``: S -> S / factor; ``DynamicLossScaleUpdateCell``
the same). Overflowing gradients on such a step are the scaler working, not a bug: they are reported as one
skipped step, not as ``tensor_overflow`` hits. A scale that keeps falling, or most steps skipped, is the
accuracy guide's "loss_scale set improperly" (``loss_scale_improper``).

Recognised from the dump: a scalar parameter named like a scaler's scale (``SCALE_PARAMS``) whose value went
down during the step (the root graph's ``Parameter`` file holds it after the step; before it, the previous
step's value, the dumped input of its first reader, or the initial snapshot), or, when no earlier value is
known, a family with an overflow check (``OVERFLOW_CHECK_OPS``) whose step ran no optimizer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from msdbg.engine.hits import Hit
from msdbg.engine.loss import LOSS_SCALE_NAMES
from msdbg.store.families import GRADIENT_SCOPE, UserStep

if TYPE_CHECKING:
    from msdbg.engine.evaluate import StepResult
    from msdbg.engine.watchpoints import Watchpoint
    from msdbg.store.dumpdir import TensorEntry
    from msdbg.store.graph import Graph

#: Parameter names (last dotted part) holding a loss scale: ms.amp.DynamicLossScaler / StaticLossScaler
#: (``scale_value``), TrainOneStepWithLossScaleCell (``scale_sense``), older cells (``loss_scale``).
SCALE_PARAMS = frozenset(LOSS_SCALE_NAMES)
#: Ops whose result says whether gradients are finite: ms.amp.all_finite on CPU/GPU (IsFinite + ReduceAll),
#: the fused AllFinite, and the float status ops of Ascend (NPUGetFloatStatusV2 and friends).
OVERFLOW_CHECK_OPS = frozenset({"IsFinite", "AllFinite", "NPUGetFloatStatusV2", "NPUGetFloatStatus",
                                "NPUClearFloatStatusV2", "NPUAllocFloatStatus", "FloatStatus"})


@dataclass(frozen=True)
class StepGraph:
    """One graph's part of a user step: its tensors, its graph and what evaluating it found."""

    entries: list["TensorEntry"]
    graph: "Graph | None"
    result: "StepResult"


@dataclass
class Skip:
    """A step the loss scaler skipped, with the scale before and after and the overflow hits it explains."""

    step: UserStep
    before: float | None
    after: float | None
    explained: int = 0

    def describe(self) -> str:
        before = f"{self.before:g}" if self.before is not None else "?"
        after = f"{self.after:g}" if self.after is not None else "?"
        tail = f"; {self.explained} overflowing gradient tensors are expected there" if self.explained else ""
        return f"step {self.step.number} skipped by loss scaling (scale {before} -> {after}){tail}"

    def to_json(self) -> dict:
        return {"rank": self.step.rank, "step": self.step.number, "root_graph": self.step.root,
                "scale_before": self.before, "scale_after": self.after, "overflow_hits_explained": self.explained}


@dataclass
class ScaleState:
    """What the loss-scale review remembers per (rank, root graph)."""

    scale: float | None = None
    steps: int = 0
    skipped: int = 0
    consecutive: int = 0
    reported: set[tuple[int, str]] = field(default_factory=set)


def is_scale_param(name: str | None) -> bool:
    return bool(name) and name.rsplit(".", 1)[-1] in SCALE_PARAMS


def review_step(step: UserStep, parts: list[StepGraph], state: ScaleState, watchpoints: list["Watchpoint"],
                initial_values: dict[str, str]) -> Skip | None:
    """Decide whether the loss scaler skipped this training step; if so, take its gradient overflow hits out of
    the results. Judge ``loss_scale_improper`` watchpoints. Returns the skip, or None."""
    scale_entry, after = _scale_after(parts)
    if scale_entry is None and not any(_checks_overflow(p.graph) for p in parts):
        return None
    before = state.scale if state.scale is not None else _scale_before(scale_entry, parts, initial_values)
    if before is not None and after is not None:
        skipped = after < before
    else:  # no earlier value: an overflow check whose step ran no optimizer
        skipped = any(_checks_overflow(p.graph) for p in parts) and not any(
            p.graph is not None and p.graph.optimizer_ops for p in parts[1:])
    state.scale = after if after is not None else state.scale
    state.steps += 1
    state.skipped += skipped
    state.consecutive = state.consecutive + 1 if skipped else 0
    skip = Skip(step, before, after) if skipped else None
    if skip is not None:
        for part in parts:
            kept = [hit for hit in part.result.hits if not _expected_overflow(hit, part.graph, step.root)]
            skip.explained += len(part.result.hits) - len(kept)
            part.result.hits[:] = kept
    if scale_entry is not None:
        for watchpoint in watchpoints:
            if watchpoint.condition.name == "loss_scale_improper" and watchpoint.watches(scale_entry):
                hit = _judge_improper(watchpoint, scale_entry, after, state)
                if hit is not None:
                    hit.user_step = step
                    parts[0].result.hits.append(hit)
    return skip


def _judge_improper(watchpoint: "Watchpoint", entry: "TensorEntry", scale: float | None,
                    state: ScaleState) -> Hit | None:
    params = watchpoint.params
    reasons = []
    if state.consecutive >= params["consecutive_skips_ge"] and (watchpoint.number, "falling") not in state.reported:
        state.reported.add((watchpoint.number, "falling"))
        reasons.append(f"the scale fell at {state.consecutive} steps in a row (now {scale:g})")
    share = 100.0 * state.skipped / state.steps
    if (state.steps >= params["steps_ge"] and share > params["skipped_percentage_gt"]
            and (watchpoint.number, "share") not in state.reported):
        state.reported.add((watchpoint.number, "share"))
        reasons.append(f"{state.skipped} of {state.steps} steps skipped ({share:.0f}%)")
    if not reasons:
        return None
    stats = {"scale": scale, "skipped": state.skipped, "steps": state.steps, "consecutive_skips": state.consecutive}
    return Hit(watchpoint.number, watchpoint.condition.name, entry, stats, dict(params), tuple(reasons),
               first_offending=True)


def _scale_after(parts: list[StepGraph]) -> tuple["TensorEntry | None", float | None]:
    """The scale parameter's dump (root graph first: it holds the value at the end of the step) and value."""
    for part in parts:
        for entry in part.entries:
            if entry.io == "output" and entry.op_type == "Parameter" and is_scale_param(entry.param):
                return entry, _value(entry.path)
    return None, None


def _scale_before(entry: "TensorEntry | None", parts: list[StepGraph], initial_values: dict[str, str]) -> float | None:
    """The scale before the first step: the dumped input of a kernel that read it, or the initial snapshot."""
    if entry is None:
        return None
    from msdbg.engine.evaluate import pre_update_entry

    for part in parts:
        reader = pre_update_entry(entry, part.entries, part.graph)
        if reader is not None:
            return _value(reader.path)
    path = initial_values.get(entry.param or "")
    return _value(path) if path else None


def _value(path: str) -> float | None:
    try:
        values = np.load(path, mmap_mode="r").reshape(-1)
    except (OSError, ValueError):
        return None
    return float(values[0]) if values.size else None


def _checks_overflow(graph: "Graph | None") -> bool:
    return graph is not None and any(node.op_type in OVERFLOW_CHECK_OPS for node in graph.nodes.values())


def _expected_overflow(hit: Hit, graph: "Graph | None", root: int) -> bool:
    """A NaN/Inf in the backward pass or the update of a skipped step: in a control-flow graph of the step, or in
    the root graph's ``Gradients/`` scope or below it. Not in the forward pass, a weight or an input: those are
    not the scaler's doing."""
    if not hit.nonfinite or hit.entry.category in ("weight", "input"):
        return False
    if hit.entry.step.graph != root:
        return True
    node = hit.entry.graph_node
    name = node.full_name if node is not None else hit.entry.node
    if name.startswith((GRADIENT_SCOPE, "Gradients_")) or hit.entry.category == "gradient":
        return True
    if graph is None or node is None:
        return False
    return any(graph.nodes[name].full_name.startswith(GRADIENT_SCOPE) for name in graph.ancestors(node.name)
               if name in graph.nodes)
