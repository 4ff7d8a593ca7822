"""Read a MindSpore dump tree: ranks, nets, graphs, iterations and the tensors of each step.

Layout: ``{root}/rank_{r}/{net_name}/{graph_id}/{iteration}/{tensor files}``, plus per rank
``graphs/`` and ``execution_order/``. Works the same on a tree msdbg asked for and one MindSpore
wrote on its own.
"""

from __future__ import annotations

import functools
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
from msdbg.store.npyfile import NpyLayout, TensorFileError, read_header, read_npy
from msdbg.store.placement import KernelKey, dumped_kernels, place_kernels
from msdbg.store.pbreader import GraphError
from msdbg.store.statistic import StatisticRow, read_statistic_csv

_RANK_DIR = re.compile(r"^rank_([0-9]+)$")
_RESERVED = {"graphs", "execution_order", ".dump_metadata"}
STATISTIC_FILE = "statistic.csv"
LISTINGS_KEPT = 8
#: dtype names MindSpore writes into file names whose NumPy name differs.
_NAME_DTYPES = {"bool": "bool", "float": "float32", "double": "float64", "half": "float16"}
#: dtypes MindSpore documents as saved converted in .npy files (dump.md, r2.4-r2.6): named one, stored the other.
_DOCUMENTED_CONVERSIONS = {"bfloat16": "float32", "int4": "int8", "uint1": "uint8"}
PYNATIVE_NET = "PyNative"  # the net name of steps recorded from PyNative calls (store/pynative.py)
T = TypeVar("T")


@dataclass(frozen=True, order=True)
class StepKey:
    """One iteration folder: a step of one graph on one rank."""

    rank: int
    net: str
    graph: int
    iteration: int

    @property
    def place(self) -> str:
        """``graph 3`` for a graph's step, ``PyNative`` for a step recorded from PyNative calls."""
        return "PyNative" if self.net == PYNATIVE_NET else f"graph {self.graph}"


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
    unplaced: bool = False  # the step has a graph, but no node of it is known to have written this tensor
    _layout: NpyLayout | None = field(default=None, init=False, repr=False, compare=False)  # not copied by replace()
    _dtype: str | None = field(default=None, init=False, repr=False, compare=False)  # dtype, once known
    loader: Callable[[], np.ndarray] | None = None  # a tensor held in memory (PyNative capture), not a file

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

    @property
    def dtype(self) -> str:
        """The tensor's dtype as its bytes have it ('float32'; read from the .npy header and size), 'bfloat16' for a
        file named BFloat16 holding 2-byte raw bits, the CSV's for a statistics row, the name's for a tensor in
        memory and for a file that cannot be read (raises nothing: load() says what is wrong)."""
        if self._dtype is not None:
            return self._dtype
        named = self.file.dtype.lower()
        if self.stats is not None or self.loader is not None:
            return named
        try:
            layout = self.layout()
        except TensorFileError:
            return named
        if named == "bfloat16" and layout.dtype.itemsize == 2 and layout.dtype.kind in "iuV":
            self._dtype = named
        else:
            self._dtype = _dtype_name(layout.dtype)
        return self._dtype

    def dtype_note(self) -> str | None:
        """One line when the file name's dtype is not the one its bytes have. None for the known cases: MindSpore's
        CPU O2 float16 files holding float32 values under a float16 header, and the documented conversions
        (bfloat16 saved as float32, int4 as int8, uint1 as uint8)."""
        named = _NAME_DTYPES.get(self.file.dtype.lower(), self.file.dtype.lower())
        if not named or self.stats is not None or named == self.dtype:
            return None
        layout = self.layout()
        if named == "float16" and layout.header_dtype == np.float16:
            return None
        if _DOCUMENTED_CONVERSIONS.get(named) == self.dtype:
            return None
        return (f"tensor file {self.path}: its name says {self.file.dtype}, its bytes are {self.dtype}; "
                f"read as {self.dtype}")

    def layout(self) -> NpyLayout:
        """The file's header, read once (raises TensorFileError naming the file)."""
        if self._layout is None:
            self._layout = read_header(self.path)
        return self._layout

    def keep_layout(self, layout: NpyLayout) -> None:
        """The file's header as read elsewhere (stats.file_stats), so layout() and dtype read nothing more."""
        self._layout = layout

    def load(self) -> np.ndarray:
        """The tensor, memory-mapped read-only (raises TensorFileError naming the file); its header is kept for
        layout() and dtype, so loading first reads the file once."""
        if self.stats is not None:
            raise TensorFileError(f"tensor {self.label}: {self.path} holds its statistics only, not its values")
        if self.loader is not None:
            return self.loader()
        layout, array = read_npy(self.path)
        if self._layout is None:
            self._layout = layout
        return array


@functools.lru_cache(maxsize=None)
def _dtype_name(dtype: np.dtype) -> str:
    return dtype.name  # NumPy builds the name anew at each call


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
        self._placements: dict[tuple[int, int], tuple[frozenset, dict[KernelKey, Node | None]]] = {}

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

    def owns(self, key: StepKey) -> bool:
        """Whether a step is a folder of this tree (not a step of another source)."""
        return key.net != PYNATIVE_NET

    def graph_of(self, key: StepKey) -> Graph | None:
        """The graph of a step (see graph())."""
        return self.graph(key.rank, key.graph)

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
        """A step's entries, each placed in the graph (placement.py) and ordered by when its kernel ran."""
        graph = self.graph(key.rank, key.graph)
        files: list[tuple[str, TensorFileName, StatisticRow | None]] = []
        names = self._listdir(folder)
        for name in names:
            parsed = parse_tensor_filename(name)
            if parsed is not None:
                files.append((f"{folder}{os.sep}{name}", parsed, None))  # os.path.join: 1.5 µs a file, as much as parsing
        if STATISTIC_FILE in names and not files:  # beside tensor files (saved_data 'full') it repeats them
            try:
                files.extend(_statistic_files(os.path.join(folder, STATISTIC_FILE)))
            except TensorFileError as exc:  # the other steps, and this step's other files, are still checked
                self._problem(str(exc))
        kernels = dumped_kernels([(f.op_type, f.op_name, f.timestamp) for _, f, _ in files])
        placed = self._placement(key, kernels, graph, files)
        run_order = {(k.op_type, k.op_name): i for i, k in enumerate(kernels)}
        entries = [_entry(key, path, parsed, row, graph, placed, run_order) for path, parsed, row in files]
        entries.sort(key=lambda e: (e.order, e.file.timestamp, e.io != "input", e.slot))
        return entries

    def _placement(self, key: StepKey, kernels, graph: Graph | None,
                   files: list[tuple[str, TensorFileName, StatisticRow | None]]) -> dict[KernelKey, Node | None]:
        """The graph node of each kernel of a step; kept per graph while the step's kernels are the same."""
        if graph is None:
            return {}
        names = frozenset((k.op_type, k.op_name) for k in kernels)
        cached = self._placements.get((key.rank, key.graph))
        if cached is not None and cached[0] == names:
            return cached[1]
        outputs = {(f.op_type, f.op_name): (path, row) for path, f, row in files if f.io == "output" and f.slot == 0}
        shapes: dict[KernelKey, tuple[int, ...] | None] = {}

        def shape_of(kernel: KernelKey) -> tuple[int, ...] | None:
            if kernel not in shapes:
                path, row = outputs.get(kernel, (None, None))
                try:
                    shapes[kernel] = row.shape if row is not None else read_header(path).shape if path else None
                except TensorFileError:
                    shapes[kernel] = None
            return shapes[kernel]

        placed = place_kernels(kernels, graph, shape_of)
        self._placements[(key.rank, key.graph)] = (names, placed)
        return placed


def _statistic_files(path: str) -> list[tuple[str, TensorFileName, StatisticRow]]:
    """The rows of a statistics-only dump as file-name fields (raises TensorFileError for a bad file)."""
    files = []
    for row in read_statistic_csv(path):
        name = row.op_name.replace(".", "_") if row.op_type == "Parameter" else row.op_name
        parsed = TensorFileName(row.op_type, dump_op_name(name), row.task_id, row.stream_id, row.timestamp, row.io,
                                row.slot, "DefaultFormat", row.data_type)
        files.append((path, parsed, row))
    return files


def _entry(key: StepKey, path: str, parsed: TensorFileName, row: StatisticRow | None, graph: Graph | None,
           placed: dict[KernelKey, Node | None], run_order: dict[KernelKey, int]) -> TensorEntry:
    """A tensor of a step, named and classified through its graph node when it has one."""
    kernel = (parsed.op_type, parsed.op_name)
    order = run_order[kernel]
    if graph is None:
        node = None
    elif parsed.is_parameter:
        node = graph.node_for_dump(*kernel)
    else:
        node = placed.get(kernel)
    if node is not None:
        role = graph.role(node, parsed.io)
        entry = TensorEntry(key, path, parsed, node.full_name, node.op_type, role.category, role.param, order, node)
    else:
        role = _role_without_graph(parsed)
        entry = TensorEntry(key, path, parsed, parsed.op_name, parsed.op_type, role.category, role.param, order,
                            None, unplaced=graph is not None and not parsed.is_parameter)
        if row is not None:  # the CSV keeps the real name ('/' and '.'), nicer than the file-name form
            entry.node = row.op_name
            entry.param = row.op_name if row.op_type == "Parameter" else entry.param
    if row is not None:
        entry.stats, entry.available = row.stats, row.available
    return entry


def _role_without_graph(parsed: TensorFileName) -> TensorRole:
    """Best effort when the graph is missing: parameters by name, everything else an activation."""
    if parsed.is_parameter:
        name = parsed.op_name
        dotted = name.replace("_", ".")
        if is_optimizer_state_name(name) or is_optimizer_state_name(dotted):
            return TensorRole("optimizer_state", name)
        return TensorRole("weight", name)
    return TensorRole("activation", None)
