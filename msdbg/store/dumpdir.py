"""Read a MindSpore dump tree: ranks, nets, graphs, iterations and the tensors of each step.

Layout: ``{root}/rank_{r}/{net_name}/{graph_id}/{iteration}/{tensor files}``, plus per rank
``graphs/`` and ``execution_order/``. Works the same on a tree msdbg asked for and one MindSpore
wrote on its own.
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, TypeVar

import numpy as np

from msdbg.errors import MsdbgError
from msdbg.engine.stats import TensorStats
from msdbg.numeric import is_ascii_int
from msdbg.store.filenames import TensorFileName, dump_op_name, parse_tensor_filename
from msdbg.store.graph import Graph, Node, TensorRole, is_optimizer_state_name, read_graph
from msdbg.store.npyfile import TensorFileError, open_npy
from msdbg.store.pbreader import GraphError
from msdbg.store.statistic import read_statistic_csv

_RANK_DIR = re.compile(r"^rank_([0-9]+)$")
_RESERVED = {"graphs", "execution_order", ".dump_metadata"}
STATISTIC_FILE = "statistic.csv"
LISTINGS_KEPT = 8
T = TypeVar("T")


@dataclass(frozen=True, order=True)
class StepKey:
    """One iteration folder: a step of one graph on one rank."""

    rank: int
    net: str
    graph: int
    iteration: int


@dataclass
class TensorEntry:
    """One dumped tensor of a step, named and classified."""

    step: StepKey
    path: str
    file: TensorFileName
    node: str
    op_type: str
    category: str
    param: str | None
    order: int
    graph_node: Node | None
    stats: TensorStats | None = None  # from statistic.csv: a statistics-only dump has no tensor data
    available: frozenset[str] = frozenset()

    @property
    def io(self) -> str:
        return self.file.io

    @property
    def slot(self) -> int:
        return self.file.slot

    @property
    def label(self) -> str:
        """``node:io:slot``, unique within a step."""
        return f"{self.node}:{self.io}:{self.slot}"

    def load(self) -> np.ndarray:
        """The tensor, memory-mapped read-only (raises TensorFileError naming the file)."""
        if self.stats is not None:
            raise TensorFileError(f"tensor {self.label}: {self.path} holds its statistics only, not its values")
        return open_npy(self.path)


@dataclass
class _Listing:
    """A step's entries as read at one folder mtime, and what was built from them (see DumpDir.derived)."""

    stamp: int | None
    entries: list[TensorEntry]
    derived: dict[Callable, object] = field(default_factory=dict)


class DumpDir:
    """A dump tree on disk; re-scans cheaply, so it also follows a training that is still writing."""

    def __init__(self, root: str):
        if not os.path.isdir(root):
            raise MsdbgError(f"dump directory {root}: does not exist or is not a directory")
        self.root = root
        self._graphs: dict[tuple[int, int], Graph | None] = {}
        self.graph_errors: dict[tuple[int, int], str] = {}
        # unreadable folders, graph files and statistic.csv files, one line each naming it (see problems_since)
        self.problems: list[str] = []
        self._listings: OrderedDict[StepKey, _Listing] = OrderedDict()

    # ----- structure ----------------------------------------------------------------------------
    def ranks(self) -> list[int]:
        return sorted(int(m[1]) for name in self._listdir(self.root) if (m := _RANK_DIR.match(name)))

    def _listdir(self, path: str) -> list[str]:
        """The names in a folder; an unreadable one is a problem (named once), a missing one is empty."""
        try:
            return os.listdir(path)
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            self._problem(f"dump folder {path}: {exc.strerror}; skipped")
            return []

    def _problem(self, message: str) -> None:
        if message not in self.problems:
            self.problems.append(message)

    def _numeric_dirs(self, path: str) -> list[int]:
        return sorted(int(name) for name in self._listdir(path)
                      if is_ascii_int(name) and os.path.isdir(os.path.join(path, name)))

    def rank_dir(self, rank: int) -> str:
        return os.path.join(self.root, f"rank_{rank}")

    def steps(self) -> list[StepKey]:
        """Every iteration folder of every rank, net and graph, in (rank, net, graph, iteration) order."""
        keys = []
        for rank in self.ranks():
            rank_dir = self.rank_dir(rank)
            for net in self._listdir(rank_dir):
                net_dir = os.path.join(rank_dir, net)
                if net in _RESERVED or not os.path.isdir(net_dir):
                    continue
                for graph in self._numeric_dirs(net_dir):
                    for iteration in self._numeric_dirs(os.path.join(net_dir, str(graph))):
                        keys.append(StepKey(rank, net, graph, iteration))
        return sorted(keys)

    def step_dir(self, key: StepKey) -> str:
        return os.path.join(self.rank_dir(key.rank), key.net, str(key.graph), str(key.iteration))

    def graph(self, rank: int, graph_id: int) -> Graph | None:
        """The graph of a rank, or None when its files are missing or unreadable (see graph_errors)."""
        cache_key = (rank, graph_id)
        if cache_key not in self._graphs:
            try:
                self._graphs[cache_key] = read_graph(self.rank_dir(rank), graph_id)
            except GraphError as exc:
                self._graphs[cache_key] = None
                self.graph_errors[cache_key] = str(exc)
                if exc.unreadable:
                    self._problem(str(exc))
        return self._graphs[cache_key]

    def loaded_graphs(self) -> list[Graph]:
        """The graphs read so far (every graph of an evaluated step)."""
        return [graph for graph in self._graphs.values() if graph is not None]

    # ----- tensors ------------------------------------------------------------------------------
    def tensors(self, key: StepKey) -> list[TensorEntry]:
        """All tensor files of a step, classified, in execution order.

        The last few steps' listings are kept while their folder is unchanged (same mtime), so evaluation,
        cross-rank checks and prompt commands (list, print, completion) do not list and parse a folder again.
        """
        return self._listing(key).entries

    def derived(self, key: StepKey, build: Callable[[list[TensorEntry]], T]) -> T:
        """``build(entries)`` for a step's tensors, computed once and kept as long as its listing (name indexes)."""
        listing = self._listing(key)
        if build not in listing.derived:
            listing.derived[build] = build(listing.entries)
        return listing.derived[build]

    def _listing(self, key: StepKey) -> _Listing:
        folder = self.step_dir(key)
        try:
            stamp = os.stat(folder).st_mtime_ns
        except OSError:
            stamp = None
        cached = self._listings.get(key)
        if cached is not None and stamp is not None and cached.stamp == stamp:
            self._listings.move_to_end(key)
            return cached
        listing = _Listing(stamp, self._read_step(key, folder))
        if stamp is not None:
            self._listings[key] = listing
            while len(self._listings) > LISTINGS_KEPT:
                self._listings.popitem(last=False)
        return listing

    def _read_step(self, key: StepKey, folder: str) -> list[TensorEntry]:
        graph = self.graph(key.rank, key.graph)
        entries = []
        names = self._listdir(folder)
        for name in names:
            parsed = parse_tensor_filename(name)
            if parsed is not None:
                entries.append(_entry(key, os.path.join(folder, name), parsed, graph))
        if STATISTIC_FILE in names and not entries:  # beside tensor files (saved_data 'full') it repeats them
            try:
                entries.extend(_statistic_entries(key, os.path.join(folder, STATISTIC_FILE), graph))
            except TensorFileError as exc:  # the other steps, and this step's other files, are still checked
                self._problem(str(exc))
        if graph is None:
            timestamps = sorted({e.file.timestamp for e in entries})
            rank_of = {t: i for i, t in enumerate(timestamps)}
            for entry in entries:
                entry.order = rank_of[entry.file.timestamp]
        entries.sort(key=lambda e: (e.order, e.file.timestamp, e.io != "input", e.slot))
        return entries


def _entry(key: StepKey, path: str, parsed: TensorFileName, graph: Graph | None) -> TensorEntry:
    node = graph.node_for_dump(parsed.op_type, parsed.op_name) if graph is not None else None
    if node is not None:
        role = graph.role(node, parsed.io)
        return TensorEntry(key, path, parsed, node.full_name, node.op_type, role.category, role.param,
                           graph.order_of(node), node)
    role = _role_without_graph(parsed)
    return TensorEntry(key, path, parsed, parsed.op_name, parsed.op_type, role.category, role.param, 0, None)


def _statistic_entries(key: StepKey, path: str, graph: Graph | None) -> list[TensorEntry]:
    """Entries for the rows of a statistics-only dump (raises TensorFileError for a bad file)."""
    entries = []
    for row in read_statistic_csv(path):
        name = row.op_name.replace(".", "_") if row.op_type == "Parameter" else row.op_name
        parsed = TensorFileName(row.op_type, dump_op_name(name), row.task_id, row.stream_id, row.timestamp, row.io,
                                row.slot, "DefaultFormat", row.data_type)
        entry = _entry(key, path, parsed, graph)
        if entry.graph_node is None:  # the CSV keeps the real name ('/' and '.'), nicer than the file-name form
            entry.node = row.op_name
            entry.param = row.op_name if row.op_type == "Parameter" else entry.param
        entry.stats, entry.available = row.stats, row.available
        entries.append(entry)
    return entries


def _role_without_graph(parsed: TensorFileName) -> TensorRole:
    """Best effort when the graph is missing: parameters by name, everything else an activation."""
    if parsed.is_parameter:
        name = parsed.op_name
        dotted = name.replace("_", ".")
        if is_optimizer_state_name(name) or is_optimizer_state_name(dotted):
            return TensorRole("optimizer_state", name)
        return TensorRole("weight", name)
    return TensorRole("activation", None)
