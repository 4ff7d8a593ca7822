"""A watchpoint hit and its JSON form (the public contract)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from msdbg.store.dumpdir import TensorEntry


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

    @property
    def step(self) -> int:
        return self.entry.step.iteration

    @property
    def nonfinite(self) -> bool:
        """Whether the hit tensor held NaN or Inf (as far as its statistics counted)."""
        return any(self.stats.get(name) for name in ("nan", "pos_inf", "neg_inf"))

    def to_json(self) -> dict[str, Any]:
        """The hit as the ``--json`` contract spells it, plus ``reasons`` and ``source``."""
        key = self.entry.step
        return {
            "watchpoint": self.watchpoint,
            "condition": self.condition,
            "step": key.iteration,
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
