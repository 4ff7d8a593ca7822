"""Training steps as the user counts them.

MindSpore runs one top-level call (a ``@ms.jit`` training step, one ``Model.train`` step, one ``Model.eval``
batch) as a *root* kernel graph, plus the kernel graphs of its control flow (an ``if`` on ``all_finite``, the
update branch of gradient accumulation). Measured on CPU with MindSpore 2.10: every root graph has
``execution_order/ms_global_execution_order_graph_{root}.csv`` (the iterations it ran); its control-flow graphs
have none, take the ids after it, and dump into iteration folders numbered like the root's (one iteration counter
for the whole process: train and eval roots take turns in it). So a user's step is
one (rank, root, iteration), however many graphs it ran; a family whose graphs compute gradients or hold an
optimizer is a training phase, any other an evaluation phase, numbered apart.
Dumps without the global files (older MindSpore) make each graph its own family.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from msdbg.store.graph import Graph

if TYPE_CHECKING:
    from msdbg.store.dumpdir import DumpDir, StepKey

TRAIN, EVAL = "train", "eval"
_GLOBAL_ORDER = re.compile(r"^ms_global_execution_order_graph_(\d+)\.csv$")
_GRAPH_FILE = re.compile(r"^ms_output_trace_code_graph_(\d+)\.(?:pb|ir)$")
GRADIENT_SCOPE = "Gradients/"


@dataclass(frozen=True, order=True)
class UserStep:
    """A step as the user counts it: ``number`` of the phase (train or eval) of root graph ``root``."""

    rank: int
    root: int
    phase: str
    number: int


@dataclass
class _Order:
    """The iterations a root ran, in the order they ran: iteration -> position."""

    position: dict[int, int] = field(default_factory=dict)
    offset: int = 0  # bytes of the global execution order file read so far (it grows by a line per call)

    def read_new_lines(self, path: str) -> None:
        try:
            with open(path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except OSError:
            return
        complete = data[:data.rfind(b"\n") + 1]
        self.offset += len(complete)
        for line in complete.split():
            if line.isdigit():
                self.position.setdefault(int(line), len(self.position))

    def add_sorted(self, iterations: set[int]) -> None:
        """No file: number the iterations not seen yet after the known ones, in increasing order."""
        for iteration in sorted(iterations - self.position.keys()):
            self.position[iteration] = len(self.position)


@dataclass
class _RankFamilies:
    roots: list[int]
    graphs: list[int]
    orders: dict[int, _Order] = field(default_factory=dict)
    phases: dict[int, str] = field(default_factory=dict)


class GraphFamilies:
    """Root graphs and their control-flow graphs in one rank of a dump, and the user's step of each folder."""

    def __init__(self, dump: "DumpDir"):
        self.dump = dump
        self._ranks: dict[int, _RankFamilies] = {}

    def root_of(self, rank: int, graph: int) -> int:
        """The root graph whose top-level call ran ``graph`` (itself for a root, or without global order files)."""
        families = self._rank(rank)
        if graph not in families.graphs:  # compiled since the last look (a live training)
            families.roots, families.graphs = _scan(self._rank_dir(rank))
        if not families.roots:
            return graph
        return max((root for root in families.roots if root <= graph), default=graph)

    def members(self, rank: int, root: int) -> list[int]:
        """The graphs of a family: the root and the graphs numbered after it, up to the next root."""
        return [g for g in self._rank(rank).graphs if self.root_of(rank, g) == root] or [root]

    def graphs(self, rank: int, root: int) -> list[Graph]:
        """The readable graphs of a family."""
        return [g for g in (self.dump.graph(rank, member) for member in self.members(rank, root)) if g is not None]

    def phase(self, rank: int, root: int) -> str:
        """``train`` when a graph of the family computes gradients or updates weights (or none is readable), else
        ``eval``."""
        families = self._rank(rank)
        if root not in families.phases:  # without readable graphs: unknown, judged as training
            graphs = self.graphs(rank, root)
            families.phases[root] = TRAIN if not graphs or any(_trains(g) for g in graphs) else EVAL
        return families.phases[root]

    def trained(self, rank: int, root: int) -> frozenset[str]:
        """Parameters an optimizer op of the family updates."""
        return frozenset().union(*(g.updated_params for g in self.graphs(rank, root)))

    def gradient_buffers(self, rank: int, root: int) -> frozenset[str]:
        """Parameters the family's optimizers take as gradients (accumulation buffers such as ``acc.*``)."""
        return frozenset().union(*(g.gradient_buffers for g in self.graphs(rank, root)))

    def user_step(self, key: "StepKey") -> UserStep:
        """The user's step of an iteration folder: its family's phase and the position of its iteration in the
        order its root ran (MindSpore's iteration counter is shared by train and eval roots)."""
        root = self.root_of(key.rank, key.graph)
        return UserStep(key.rank, root, self.phase(key.rank, root), self._position(key.rank, root, key.iteration))

    def _position(self, rank: int, root: int, iteration: int) -> int:
        """Where the iteration comes in the root's execution order: its global execution order file lists the
        iterations it ran as they ran (an eval root's first call takes the shared counter's next value, later
        ones restart at 1: ``6 1 2 3 4 5``). Without the file: the order of the folder numbers."""
        order = self._rank(rank).orders.setdefault(root, _Order())
        if iteration not in order.position:
            rank_dir = self._rank_dir(rank)
            if rank_dir is not None:
                order.read_new_lines(os.path.join(rank_dir, "execution_order",
                                                  f"ms_global_execution_order_graph_{root}.csv"))
        if iteration not in order.position:
            members = set(self.members(rank, root))
            on_disk = {k.iteration for k in self.dump.steps() if k.rank == rank and k.graph in members}
            order.add_sorted(on_disk | {iteration})
        return order.position[iteration]

    def _rank(self, rank: int) -> _RankFamilies:
        if rank not in self._ranks:
            self._ranks[rank] = _RankFamilies(*_scan(self._rank_dir(rank)))
        return self._ranks[rank]

    def _rank_dir(self, rank: int) -> str | None:
        """The rank's folder, or None for a step source without one (a flight recording): each graph its own
        family there."""
        rank_dir = getattr(self.dump, "rank_dir", None)
        return rank_dir(rank) if rank_dir is not None else None


def _scan(rank_dir: str | None) -> tuple[list[int], list[int]]:
    """Root graph ids (those with a global execution order) and every graph id of a rank."""
    if rank_dir is None:
        return [], []
    roots = sorted(int(m[1]) for name in _listdir(os.path.join(rank_dir, "execution_order"))
                   if (m := _GLOBAL_ORDER.match(name)))
    graphs = sorted({int(m[1]) for name in _listdir(os.path.join(rank_dir, "graphs")) if (m := _GRAPH_FILE.match(name))})
    return roots, graphs


def _trains(graph: Graph) -> bool:
    return bool(graph.optimizer_ops) or any(n.full_name.startswith(GRADIENT_SCOPE) for n in graph.nodes.values())


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []
