"""Read a flight recording (store/recorder.py): a step source of statistics only, plus series over all steps.

``Recording`` answers what the session asks of a dump (ranks, steps, a step's entries, graphs), with entries that
carry their recorded statistics instead of tensor data, so ``msdbg open`` runs the same commands on a finished
run; and what only a recording has: a statistic or the loss over every step of the run.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from typing import Callable, NamedTuple, TypeVar

from msdbg.engine.hits import Hit
from msdbg.engine.stats import TensorStats
from msdbg.errors import UsageError
from msdbg.store.dumpdir import StepKey, TensorEntry
from msdbg.store.filenames import TensorFileName, dump_op_name
from msdbg.store.graph import Graph
from msdbg.store.recorder import SCHEMA_VERSION, STAT_COLUMNS, decode_graph

T = TypeVar("T")
#: What a recorded entry's statistics answer (stats.STAT_NAMES).
RECORDED = frozenset({"nonfinite", "nan", "pos_inf", "neg_inf", "zero", "min", "max", "sum", "abs_sum", "sq_sum",
                      "finite_count"})
_TENSOR_COLUMNS = "t.id, t.label, t.node, t.op_type, t.category, t.param, t.io, t.slot, t.dtype, t.shape, t.ord"


class Point(NamedTuple):
    """One step of a series: its iteration, the value (None: not finite or not recorded), and whether it was
    NaN/Inf."""

    step: int
    value: float | None
    nonfinite: bool


def as_curve(points: list[Point]) -> list[tuple[int, float]]:
    """(step, value) pairs for the loss-curve rules; a step whose value was NaN/Inf becomes NaN."""
    return [(p.step, math.nan if p.value is None else p.value) for p in points]


class Recording:
    """A recording opened for reading (a finished run, or the one a live run is writing through ``db``)."""

    def __init__(self, path: str, db: sqlite3.Connection | None = None):
        self.path = path
        if db is None:
            if not os.path.isfile(path):
                raise UsageError(f"recording {path}: no such file")
            try:
                db = sqlite3.connect(f"file:{os.path.abspath(path)}?mode=ro", uri=True, check_same_thread=False)
                version = dict(db.execute("SELECT key, value FROM meta")).get("version")
            except sqlite3.Error as exc:
                raise UsageError(f"recording {path}: not an msdbg recording ({exc})") from None
            if version != str(SCHEMA_VERSION):
                raise UsageError(f"recording {path}: format version {version}, this msdbg reads {SCHEMA_VERSION}")
        self.db = db
        self.graph_errors: dict[tuple[int, int], str] = {}
        self._graphs: dict[tuple[int, int], Graph | None] = {}
        self._entries: dict[StepKey, list[TensorEntry]] = {}
        self._derived: dict[tuple[StepKey, Callable], object] = {}

    # ----- the step source ----------------------------------------------------------------------
    def meta(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, value FROM meta"))

    def ranks(self) -> list[int]:
        return [row[0] for row in self.db.execute("SELECT DISTINCT rank FROM steps ORDER BY rank")]

    def steps(self) -> list[StepKey]:
        """Every recorded step, in (rank, net, graph, iteration) order."""
        return [StepKey(*row) for row in
                self.db.execute("SELECT rank, net, graph, iteration FROM steps ORDER BY rank, net, graph, iteration")]

    def graph(self, rank: int, graph_id: int) -> Graph | None:
        key = (rank, graph_id)
        if key not in self._graphs:
            row = self.db.execute("SELECT body FROM graphs WHERE rank=? AND graph=?", key).fetchone()
            self._graphs[key] = decode_graph(row[0]) if row else None
            if row is None:
                self.graph_errors[key] = f"recording {self.path} holds no graph {graph_id} of rank {rank}"
        return self._graphs[key]

    def loaded_graphs(self) -> list[Graph]:
        """Every recorded graph (diagnose looks at all of them)."""
        for rank, graph_id in self.db.execute("SELECT rank, graph FROM graphs").fetchall():
            self.graph(rank, graph_id)
        return [graph for graph in self._graphs.values() if graph is not None]

    def tensors(self, key: StepKey) -> list[TensorEntry]:
        """The tensors recorded at a step, with their statistics, in execution order."""
        if key not in self._entries:
            step_id = self._step_id(key)
            rows = self.db.execute(
                f"SELECT {_TENSOR_COLUMNS}, s.size, {', '.join('s.' + c for c in STAT_COLUMNS)} FROM stats s "
                "JOIN tensors t ON t.id = s.tensor WHERE s.step = ? ORDER BY t.ord, t.label", (step_id,)).fetchall()
            graph = self.graph(key.rank, key.graph)
            self._entries = {key: [self._entry(key, row[:11], _stats(row[8], row[9], row[11:]), graph)
                                   for row in rows]}
        return self._entries[key]

    def derived(self, key: StepKey, build: Callable[[list[TensorEntry]], T]) -> T:
        if (key, build) not in self._derived:
            self._derived = {(key, build): build(self.tensors(key))} | {
                k: v for k, v in self._derived.items() if k[0] == key}
        return self._derived[(key, build)]

    def _entry(self, key: StepKey, row: tuple, stats: TensorStats | None, graph: Graph | None) -> TensorEntry:
        _, label, node, op_type, category, param, io, slot, dtype, _, order = row
        file = TensorFileName(op_type, dump_op_name(node), 0, 0, 0, io, slot, "DefaultFormat", dtype)
        graph_node = graph.by_full_name.get(node) or graph.nodes.get(node) if graph is not None else None
        return TensorEntry(key, self.path, file, node, op_type, category, param, order, graph_node, stats,
                           RECORDED if stats is not None else frozenset())

    def _step_id(self, key: StepKey) -> int:
        row = self.db.execute("SELECT id FROM steps WHERE rank=? AND net=? AND graph=? AND iteration=?",
                              (key.rank, key.net, key.graph, key.iteration)).fetchone()
        if row is None:
            raise UsageError(f"step {key.iteration} of graph {key.graph} (rank {key.rank}) is not recorded")
        return row[0]

    # ----- what only a recording has -------------------------------------------------------------
    def hits(self) -> list[Hit]:
        """Every recorded hit, in step and execution order."""
        rows = self.db.execute(
            f"SELECT st.rank, st.net, st.graph, st.iteration, {_TENSOR_COLUMNS}, h.watchpoint, h.condition, "
            "h.first_offending, h.stats, h.params, h.reasons, h.source FROM hits h JOIN steps st ON st.id = h.step "
            "JOIN tensors t ON t.id = h.tensor ORDER BY st.rank, st.net, st.graph, st.iteration, h.id").fetchall()
        hits = []
        for row in rows:
            key = StepKey(*row[:4])
            number, condition, first, stats, params, reasons, source = row[15:]
            entry = self._entry(key, row[4:15], None, self.graph(key.rank, key.graph))
            hits.append(Hit(number, condition, entry, json.loads(stats), json.loads(params),
                            tuple(json.loads(reasons)), bool(first), source))
        return hits

    def watchpoints(self) -> list[tuple[int, str, dict[str, float], str | None, bool]]:
        """(number, condition, params, target, enabled) of the run's watchpoints."""
        return [(n, c, json.loads(p), t, bool(e)) for n, c, p, t, e in
                self.db.execute("SELECT number, condition, params, target, enabled FROM watchpoints ORDER BY number")]

    def series(self, key: StepKey, label: str, stat: str) -> list[Point]:
        """A tensor's ``stat`` (STAT_COLUMNS, or ``nonfinite``: its NaN+Inf count) at every recorded step of its
        rank, net and graph. A step where the tensor held NaN/Inf is marked (except for ``nonfinite`` itself)."""
        bad = "s.nan + s.pos_inf + s.neg_inf"
        if stat == "nonfinite":
            expression, bad = bad, "0"
        elif stat in STAT_COLUMNS:
            expression = f"s.{stat}"
        else:
            raise UsageError(f"no recorded statistic {stat!r}; recorded: {', '.join(STAT_COLUMNS)}, nonfinite")
        rows = self.db.execute(
            f"SELECT st.iteration, {expression}, {bad} FROM stats s JOIN tensors t ON t.id = "
            "s.tensor JOIN steps st ON st.id = s.step WHERE t.rank=? AND t.net=? AND t.graph=? AND t.label=? "
            "ORDER BY st.iteration", (key.rank, key.net, key.graph, label)).fetchall()
        return [Point(step, value, bool(bad)) for step, value, bad in rows]

    def scalar_series(self, column: str, rank: int | None = None) -> list[Point]:
        """The loss, lr or loss_scale of every training step that has one (the graph with most of them)."""
        if column not in ("loss", "lr", "loss_scale"):
            raise ValueError(column)
        nonfinite = "loss_nonfinite" if column == "loss" else "0"
        where = f"({column} IS NOT NULL OR {nonfinite} = 1) AND training = 1"
        params: tuple = ()
        if rank is not None:
            where, params = where + " AND rank = ?", (rank,)
        best = self.db.execute(f"SELECT rank, net, graph FROM steps WHERE {where} GROUP BY rank, net, graph "
                               "ORDER BY COUNT(*) DESC, rank LIMIT 1", params).fetchone()
        if best is None:
            return []
        rows = self.db.execute(f"SELECT iteration, {column}, {nonfinite} FROM steps WHERE {where} AND rank=? AND net=? "
                               "AND graph=? ORDER BY iteration", (*params, *best)).fetchall()
        return [Point(step, None if value is None or math.isnan(value) else value, bool(bad) or
                      (value is not None and not math.isfinite(value))) for step, value, bad in rows]

    def health(self, key: StepKey) -> dict[str, tuple[int, int, int]]:
        """label -> (NaN/Inf count, zero count, size) of every tensor recorded at a step."""
        rows = self.db.execute(
            "SELECT t.label, s.nan + s.pos_inf + s.neg_inf, s.zero, s.size FROM stats s JOIN tensors t ON "
            "t.id = s.tensor JOIN steps st ON st.id = s.step WHERE st.rank=? AND st.net=? AND st.graph=? AND "
            "st.iteration=?", (key.rank, key.net, key.graph, key.iteration))
        return {label: (bad or 0, zero or 0, size) for label, bad, zero, size in rows}

    def changed(self, key: StepKey) -> set[str] | None:
        """Labels whose recorded statistics differ from the previous recorded step of the graph (None: no
        previous step)."""
        previous = self.db.execute(
            "SELECT MAX(iteration) FROM steps WHERE rank=? AND net=? AND graph=? AND iteration<?",
            (key.rank, key.net, key.graph, key.iteration)).fetchone()[0]
        if previous is None:
            return None
        columns = ", ".join(f"s.{c}" for c in STAT_COLUMNS)
        query = (f"SELECT t.label, {columns} FROM stats s JOIN tensors t ON t.id = s.tensor JOIN steps st ON "
                 "st.id = s.step WHERE st.rank=? AND st.net=? AND st.graph=? AND st.iteration=?")
        now = {row[0]: row[1:] for row in self.db.execute(query, (key.rank, key.net, key.graph, key.iteration))}
        before = {row[0]: row[1:] for row in self.db.execute(query, (key.rank, key.net, key.graph, previous))}
        return {label for label, values in now.items() if label in before and before[label] != values}

    def tensors_checked(self) -> int:
        """Tensor statistics recorded over the run (one per evaluated tensor and step)."""
        return self.db.execute("SELECT COUNT(*) FROM stats").fetchone()[0]

    def close(self) -> None:
        self.db.close()


def _stats(dtype: str, shape: str, values: tuple) -> TensorStats | None:
    size, low, high, mean, abs_mean, l2norm, nan, pos_inf, neg_inf, zero = values
    if size is None:
        return None
    finite = size - (nan or 0) - (pos_inf or 0) - (neg_inf or 0)
    return TensorStats(size, dtype, tuple(json.loads(shape)), nan=nan, pos_inf=pos_inf, neg_inf=neg_inf, zero=zero,
                       min=low, max=high, sum=None if mean is None else mean * finite,
                       abs_sum=None if abs_mean is None else abs_mean * finite,
                       sq_sum=None if l2norm is None else l2norm * l2norm, finite_count=finite)
