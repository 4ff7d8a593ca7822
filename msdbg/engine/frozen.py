"""weight_frozen: weights that stay bit-for-bit unchanged while training updates the others.

Judged over a whole training step (every graph it ran), so it stays silent where no weight changes at all:
learning-rate warm-up from 0, the accumulation steps of gradient accumulation, steps a loss scaler skipped. A
weight counts a step against itself only when, in that step, some parameter an optimizer updates did change;
it hits once, when that count reaches ``steps_ge`` in a row. Gradient accumulation buffers (parameters fed to an
optimizer as its gradient) are not weights here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from msdbg.engine.hits import Hit
from msdbg.engine.watchpoints import Watchpoint
from msdbg.store.dumpdir import TensorEntry
from msdbg.store.families import UserStep


@dataclass
class FrozenState:
    """Per (rank, root graph): for each (watchpoint, parameter), the run of steps it stayed unchanged."""

    unchanged_since: dict[tuple[int, str], int] = field(default_factory=dict)
    counts: dict[tuple[int, str], int] = field(default_factory=dict)
    reported: set[tuple[int, str]] = field(default_factory=set)


def review_step(step: UserStep, votes: list[tuple[Watchpoint, TensorEntry, bool]], state: FrozenState,
                trained: frozenset[str], buffers: frozenset[str]) -> list[Hit]:
    """Count this step for every weight it left unchanged while optimizer-updated weights changed; return the
    hits of weights whose count just reached their watchpoint's ``steps_ge``."""
    unchanged: dict[tuple[int, str], bool] = {}
    entries: dict[tuple[int, str], tuple[Watchpoint, TensorEntry]] = {}
    for watchpoint, entry, same in votes:
        if not entry.param or entry.param in buffers:
            continue
        key = (watchpoint.number, entry.param)
        unchanged[key] = unchanged.get(key, True) and same
        entries.setdefault(key, (watchpoint, entry))
    updated = trained or frozenset(param for _, param in unchanged)
    if not any(not same and param in updated for (_, param), same in unchanged.items()):
        return []  # nothing trained changed: warm-up at lr 0, an accumulation step, a skipped step
    hits = []
    for key, same in unchanged.items():
        if not same:
            state.counts[key] = 0
            continue
        state.counts[key] = state.counts.get(key, 0) + 1
        if state.counts[key] == 1:
            state.unchanged_since[key] = step.number
        watchpoint, entry = entries[key]
        if state.counts[key] >= watchpoint.params["steps_ge"] and key not in state.reported:
            state.reported.add(key)
            reason = (f"unchanged for {state.counts[key]} training steps (since step {state.unchanged_since[key]}) "
                      "in which the weights an optimizer updates changed")
            hit = Hit(watchpoint.number, watchpoint.condition.name, entry, {"unchanged_steps": state.counts[key]},
                      dict(watchpoint.params), (reason,))
            node = entry.graph_node
            source = node.user_source() if node is not None else None
            hit.source = str(source) if source else None
            hit.user_step, hit.first_offending = step, True  # no ancestor of a weight nobody updates hits
            hits.append(hit)
    return hits
