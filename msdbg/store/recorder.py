"""The flight recorder: every evaluated step's statistics, loss, learning rate, loss scale and hits, in SQLite.

Step folders are pruned (``--keep-steps``); the recording keeps the summary of every step for the whole run, so
``history``, ``plot`` and ``msdbg open`` see all of it. One transaction per step: a killed training leaves every
step it finished readable. The graphs are stored once (nodes, parameter kinds, execution order, zlib-compressed
JSON) so ``open`` can name, place and trace tensors without the dump.
"""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import time
import zlib
from datetime import datetime
from typing import Iterable

from msdbg.engine.hits import Hit
from msdbg.engine.stats import TensorStats
from msdbg.engine.watchpoints import Watchpoint
from msdbg.errors import UsageError
from msdbg.store.dumpdir import StepKey, TensorEntry
from msdbg.store.graph import Graph

SCHEMA_VERSION = 1
DEFAULT_DIR = os.path.join(".msdbg", "runs")
RUNS_DIR_ENV = "MSDBG_RUNS_DIR"  # where default recordings go instead of ./.msdbg/runs
SUFFIX = ".msdbg.sqlite"
#: Columns of the stats table, in order (also the statistics ``history`` and ``plot`` can show).
STAT_COLUMNS = ("min", "max", "mean", "abs_mean", "l2norm", "nan", "pos_inf", "neg_inf", "zero")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS steps (id INTEGER PRIMARY KEY, rank INTEGER, net TEXT, graph INTEGER,
    iteration INTEGER, training INTEGER, time REAL, loss REAL, loss_nonfinite INTEGER, lr REAL, loss_scale REAL,
    UNIQUE (rank, net, graph, iteration));
CREATE TABLE IF NOT EXISTS tensors (id INTEGER PRIMARY KEY, rank INTEGER, net TEXT, graph INTEGER, label TEXT,
    node TEXT, op_type TEXT, category TEXT, param TEXT, io TEXT, slot INTEGER, dtype TEXT, shape TEXT,
    ord INTEGER, UNIQUE (rank, net, graph, label));
CREATE TABLE IF NOT EXISTS stats (step INTEGER, tensor INTEGER, size INTEGER,
    {", ".join(f"{name} {'REAL' if name in ('min', 'max', 'mean', 'abs_mean', 'l2norm') else 'INTEGER'}"
               for name in STAT_COLUMNS)},
    PRIMARY KEY (tensor, step)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hits (id INTEGER PRIMARY KEY, step INTEGER, tensor INTEGER, watchpoint INTEGER,
    condition TEXT, first_offending INTEGER, stats TEXT, params TEXT, reasons TEXT, source TEXT);
CREATE TABLE IF NOT EXISTS watchpoints (number INTEGER PRIMARY KEY, condition TEXT, params TEXT, target TEXT,
    enabled INTEGER);
CREATE TABLE IF NOT EXISTS graphs (rank INTEGER, graph INTEGER, body BLOB, PRIMARY KEY (rank, graph));
"""


def runs_dir() -> str:
    """Where recordings go by default: ``$MSDBG_RUNS_DIR``, else ``./.msdbg/runs``."""
    return os.environ.get(RUNS_DIR_ENV) or DEFAULT_DIR


def default_path(script: str, directory: str | None = None, now: datetime | None = None, suffix: str = "") -> str:
    """``./.msdbg/runs/YYYYmmdd-HHMMSS-SCRIPT{suffix}.msdbg.sqlite`` (a counter is added if it exists)."""
    directory = directory or runs_dir()
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", os.path.splitext(os.path.basename(script))[0] + suffix) or "run"
    path = os.path.join(directory, f"{stamp}-{stem}{SUFFIX}")
    counter = 1
    while os.path.exists(path):
        counter += 1
        path = os.path.join(directory, f"{stamp}-{stem}-{counter}{SUFFIX}")
    return path


def newest_recording(directory: str | None = None) -> str:
    """The most recently modified recording in ``directory`` (default: runs_dir()); UsageError when none."""
    directory = directory or runs_dir()
    try:
        names = [n for n in os.listdir(directory) if n.endswith(SUFFIX)]
    except OSError:
        names = []
    if not names:
        raise UsageError(f"no recording in {directory}/: run 'msdbg run' or 'msdbg check' first, or name one")
    return max((os.path.join(directory, n) for n in names), key=os.path.getmtime)


def stats_row(stats: TensorStats) -> tuple:
    """The values of STAT_COLUMNS (None where not computed)."""
    return (_real(stats.min), _real(stats.max), _real(stats.mean), _real(stats.abs_mean), _real(stats.l2norm),
            stats.nan, stats.pos_inf, stats.neg_inf, stats.zero)


def _real(value: float | None) -> float | None:
    return None if value is None else float(value)


class Recorder:
    """Writes one run's recording. Every method is one transaction; failures raise UsageError naming the file."""

    def __init__(self, path: str, *, source: str, argv: Iterable[str] = ()):
        self.path = path
        try:
            parent = os.path.dirname(os.path.abspath(path))
            os.makedirs(parent, exist_ok=True)
            if os.path.exists(path):
                raise UsageError(f"--record {path}: already exists; name a new file")
            self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
            with self._transaction():
                self._meta(version=SCHEMA_VERSION, source=source, argv=json.dumps(list(argv)),
                           started=datetime.now().isoformat(timespec="seconds"), cwd=os.getcwd())
        except (OSError, sqlite3.Error) as exc:
            raise UsageError(f"--record {path}: cannot create the recording ({exc})") from None
        self._tensor_ids: dict[tuple, int] = {}
        self._graphs_saved: set[tuple[int, int]] = set()

    def _transaction(self):
        return _Transaction(self.db)

    def _meta(self, **values: object) -> None:
        self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in values.items()])

    def record_watchpoints(self, watchpoints: Iterable[Watchpoint]) -> None:
        """The watchpoints as they are now (replaces the previous list)."""
        with self._transaction():
            self.db.execute("DELETE FROM watchpoints")
            self.db.executemany("INSERT INTO watchpoints VALUES (?, ?, ?, ?, ?)", [
                (w.number, w.condition.name, json.dumps(w.params), w.target.text if w.target else None,
                 int(w.enabled)) for w in watchpoints])

    def record_step(self, key: StepKey, *, training: bool, tensors: list[tuple[TensorEntry, TensorStats]],
                    hits: list[Hit], graph: Graph | None, loss: TensorStats | None = None,
                    lr: float | None = None, loss_scale: float | None = None) -> None:
        """One step: its scalars, the statistics of its evaluated tensors and its hits, in one transaction."""
        loss_value, loss_bad = _loss_value(loss)
        with self._transaction():
            if graph is not None and (key.rank, key.graph) not in self._graphs_saved:
                self.db.execute("INSERT OR REPLACE INTO graphs VALUES (?, ?, ?)",
                                (key.rank, key.graph, encode_graph(graph)))
                self._graphs_saved.add((key.rank, key.graph))
            step_id = self.db.execute(
                "INSERT OR REPLACE INTO steps (rank, net, graph, iteration, training, time, loss, loss_nonfinite, lr, "
                "loss_scale) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key.rank, key.net, key.graph, key.iteration, int(training), time.time(), loss_value, loss_bad,
                 lr, loss_scale)).lastrowid
            self.db.executemany(
                f"INSERT OR REPLACE INTO stats VALUES (?, ?, ?, {', '.join('?' * len(STAT_COLUMNS))})",
                [(step_id, self._tensor_id(entry, stats), stats.size, *stats_row(stats)) for entry, stats in tensors])
            self.db.executemany(
                "INSERT INTO hits (step, tensor, watchpoint, condition, first_offending, stats, params, reasons, "
                "source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(step_id, self._tensor_id(hit.entry, None), hit.watchpoint, hit.condition, int(hit.first_offending),
                  json.dumps(hit.stats), json.dumps(hit.params), json.dumps(list(hit.reasons)), hit.source)
                 for hit in hits])

    def _tensor_id(self, entry: TensorEntry, stats: TensorStats | None) -> int:
        key = (entry.step.rank, entry.step.net, entry.step.graph, entry.label)
        known = self._tensor_ids.get(key)
        if known is not None:
            return known
        shape = stats.shape if stats is not None else (entry.graph_node.shape if entry.graph_node else ())
        self.db.execute(
            "INSERT OR IGNORE INTO tensors (rank, net, graph, label, node, op_type, category, param, io, slot, dtype, "
            "shape, ord) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*key, entry.node, entry.op_type, entry.category, entry.param, entry.io, entry.slot,
             stats.dtype if stats is not None else entry.dtype, json.dumps(list(shape)), entry.order))
        row = self.db.execute("SELECT id FROM tensors WHERE rank=? AND net=? AND graph=? AND label=?", key).fetchone()
        self._tensor_ids[key] = row[0]
        return row[0]

    def finish(self, exit_code: int | None) -> None:
        """Note the end of the run and its exit code; fold the write-ahead log into the file."""
        with self._transaction():
            self._meta(finished=datetime.now().isoformat(timespec="seconds"), exit_code=exit_code)
        self.close()

    def close(self) -> None:
        try:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.db.execute("PRAGMA journal_mode=DELETE")
        finally:
            self.db.close()


def _loss_value(loss: TensorStats | None) -> tuple[float | None, int]:
    """The loss of a one-element tensor's statistics, and 1 when it was NaN or Inf (value then NaN/±Inf)."""
    if loss is None:
        return None, 0
    if loss.nonfinite_count:
        value = math.nan if loss.nan else (math.inf if loss.pos_inf else -math.inf)
        return (None if math.isnan(value) else value), 1
    return _real(loss.mean if loss.mean is not None else loss.min), 0


class _Transaction:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN")

    def __exit__(self, kind, value, traceback) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


def encode_graph(graph: Graph) -> bytes:
    """The graph's nodes (with shapes, source lines and dtypes), parameter kinds and execution order, compressed."""
    nodes = [[n.name, n.full_name, n.op_type, n.scope, n.inputs, list(n.shape),
              [[s.path, s.line, s.code] for s in n.source], n.dtype] for n in graph.nodes.values()]
    order = sorted(graph.exec_index, key=graph.exec_index.get)
    body = {"id": graph.graph_id, "nodes": nodes, "param_kinds": graph.param_kinds, "order": order}
    return zlib.compress(json.dumps(body, separators=(",", ":")).encode(), 6)


def decode_graph(blob: bytes) -> Graph:
    """The Graph ``encode_graph`` stored (recordings made before dtypes were stored give nodes without one)."""
    from msdbg.store.graph import Node, SourceLine

    body = json.loads(zlib.decompress(blob))
    nodes = [Node(name, full, op, scope, list(inputs), tuple(shape), [SourceLine(*s) for s in source],
                  dtype[0] if dtype else "")
             for name, full, op, scope, inputs, shape, source, *dtype in body["nodes"]]
    return Graph(body["id"], nodes, body["param_kinds"], body["order"])
