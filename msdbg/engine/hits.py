"""A watchpoint hit and its JSON form (the public contract)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from msdbg.store.dumpdir import TensorEntry
from msdbg.store.families import TRAIN, UserStep


@dataclass
class Hit:
    """One watchpoint that held on one tensor at one step."""

    watchpoint: int
    condition: str
    entry: TensorEntry
    stats: dict[str, Any]
    params: dict[str, float]
    reasons: tuple[str, ...] = ()
    first_offending: bool = False
    source: str | None = field(default=None)
    user_step: UserStep | None = None  # set by the session: the step as the user counts it

    @property
    def step(self) -> int:
        """The user's step number in its phase (train or eval); the iteration when the family is unknown."""
        return self.user_step.number if self.user_step is not None else self.entry.step.iteration

    @property
    def phase(self) -> str:
        return self.user_step.phase if self.user_step is not None else TRAIN

    @property
    def nonfinite(self) -> bool:
        """Whether the hit tensor held NaN or Inf (as far as its statistics counted)."""
        return any(self.stats.get(name) for name in ("nan", "pos_inf", "neg_inf"))

    def to_json(self) -> dict[str, Any]:
        """The hit as the ``--json`` contract spells it, plus ``reasons``, ``source``, ``phase`` and
        ``iteration`` (the dump's iteration folder of graph ``graph``)."""
        key = self.entry.step
        return {
            "watchpoint": self.watchpoint,
            "condition": self.condition,
            "step": self.step,
            "phase": self.phase,
            "iteration": key.iteration,
            "rank": key.rank,
            "graph": key.graph,
            "node": self.entry.node,
            "op_type": self.entry.op_type,
            "category": self.entry.category,
            "param": self.entry.param,
            "io": self.entry.io,
            "slot": self.entry.slot,
            "stats": self.stats,
            "params": self.params,
            "first_offending": self.first_offending,
            "reasons": list(self.reasons),
            "source": self.source,
            "placed": not self.entry.unplaced,
        }
