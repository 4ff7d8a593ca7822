"""What the engine remembers across steps: previous values of watched weights and running averages.

Only what active watchpoints need is kept: a copy of a tensor's previous value when the step's own dump holds
no pre-update copy of it, and two floats per tensor for ``tensor_turbulence``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from msdbg.engine.conditions import Condition, Verdict
from msdbg.engine.data import LabelHistory
from msdbg.engine.frozen import FrozenState
from msdbg.engine.lossscale import ScaleState
from msdbg.engine.stats import TensorStats

TensorKey = tuple[int, str, int, str]  # (rank, net, graph, node:io:slot)


@dataclass
class _Average:
    norm: float
    mean: float
    count: int = 1


@dataclass
class History:
    """Per-tensor memory across steps."""

    _previous: dict[TensorKey, np.ndarray] = field(default_factory=dict)
    _averages: dict[tuple[int, TensorKey], _Average] = field(default_factory=dict)
    _first_iteration: dict[tuple[int, str, int], int] = field(default_factory=dict)
    _digests: dict[TensorKey, int] = field(default_factory=dict)  # weight_frozen: a digest per weight (stats.py)
    # Parameter name -> .npy of its value before the first update (capture/initial.py); used by the first
    # training step evaluated, then dropped.
    initial_values: dict[str, str] = field(default_factory=dict)
    # Tensors whose file name and bytes disagree on the dtype: noted once per run.
    dtype_noted: set[TensorKey] = field(default_factory=set)
    labels: LabelHistory = field(default_factory=LabelHistory)
    # Step-level reviews, per (rank, root graph): the loss scaler's state, runs of unchanged weights.
    loss_scale: dict[tuple[int, int], ScaleState] = field(default_factory=dict)
    frozen: dict[tuple[int, int], FrozenState] = field(default_factory=dict)

    def previous(self, key: TensorKey) -> np.ndarray | None:
        return self._previous.get(key)

    def remember(self, key: TensorKey, array: np.ndarray) -> None:
        """Keep a private copy (the dump file may be deleted by retention)."""
        self._previous[key] = np.array(array, copy=True)

    def swap_digest(self, key: TensorKey, digest: int) -> int | None:
        """Keep ``digest`` as the tensor's latest and return the one it replaces (weight_frozen)."""
        previous = self._digests.get(key)
        self._digests[key] = digest
        return previous

    def is_first_step(self, rank: int, net: str, graph: int, iteration: int) -> bool:
        """True for the first iteration of a graph this session saw (where weights are still initial)."""
        first = self._first_iteration.setdefault((rank, net, graph), iteration)
        return iteration == first

    def judge_turbulence(self, condition: Condition, key: TensorKey, watchpoint_number: int,
                         stats: TensorStats, params: dict[str, float]) -> Verdict:
        """Hit when the norm (or |mean|, where the condition judges it) exceeds (1 + threshold) times its running
        average (EMA, factor beta)."""
        if stats.nonfinite_count:
            return condition.evaluate(stats, params)
        norm, mean = stats.l2norm or 0.0, abs(stats.mean or 0.0)
        slot = (watchpoint_number, key)
        average = self._averages.get(slot)
        if average is None:
            self._averages[slot] = _Average(norm, mean)
            return Verdict(False)
        limit = 1.0 + params["threshold"]
        reasons = []
        if average.count >= params["warmup"]:
            if norm > limit * average.norm:
                reasons.append(f"norm {norm:.6g} > {limit:g} x average {average.norm:.6g}")
            if condition.mean_jumps and mean > limit * average.mean:
                reasons.append(f"|mean| {mean:.6g} > {limit:g} x average {average.mean:.6g}")
        beta = params["beta"]
        average.norm = beta * average.norm + (1 - beta) * norm
        average.mean = beta * average.mean + (1 - beta) * mean
        average.count += 1
        return Verdict(bool(reasons), tuple(reasons))
