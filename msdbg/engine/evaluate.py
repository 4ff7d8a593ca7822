"""Evaluate the active watchpoints on the tensors of one step.

Each watched tensor is read once per distinct statistics request: one fused pass serves every watchpoint
that needs plain statistics, and one more pass is made per distinct range or change comparison.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from msdbg.engine.hits import Hit
from msdbg.engine.history import History, TensorKey
from msdbg.engine.data import bad_samples, check_labels, label_inputs
from msdbg.engine.stats import TensorStats, compute_stats, file_stats
from msdbg.engine.trace import mark_origins
from msdbg.engine.watchpoints import Watchpoint
from msdbg.errors import MsdbgError
from msdbg.store.dumpdir import TensorEntry
from msdbg.store.graph import Graph
from msdbg.threads import worker

_FLOAT_DTYPES = {"float16", "float32", "float64", "bfloat16", "double", "half", "float"}


@dataclass
class StepResult:
    """What evaluating one step produced."""

    hits: list[Hit] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tensors_checked: int = 0
    # (watchpoint, what) -> tensors whose pre-update or previous value was missing; one note each (see notes_for)
    missing: dict[tuple[int, str], list[str]] = field(default_factory=dict)
    # step-level conditions (weight_frozen): (watchpoint, parameter's entry, unchanged since the previous step)
    unchanged: list[tuple[Watchpoint, TensorEntry, bool]] = field(default_factory=list)
    recorded: list[tuple[TensorEntry, TensorStats]] = field(default_factory=list)  # with ``record`` only


def evaluated(entry: TensorEntry) -> bool:
    """Watchpoints look at op outputs and parameters; op inputs repeat their producers' outputs."""
    return entry.io == "output"


def is_float(entry: TensorEntry) -> bool:
    return entry.dtype in _FLOAT_DTYPES


def tensor_key(entry: TensorEntry) -> TensorKey:
    step = entry.step
    return (step.rank, step.net, step.graph, entry.label)


def pre_update_entry(entry: TensorEntry, entries: list[TensorEntry], graph: Graph | None) -> TensorEntry | None:
    """For a parameter, the dumped input of a kernel that read it before this step's update."""
    if graph is None or entry.graph_node is None or not entry.graph_node.is_parameter:
        return None
    reader = graph.initial_value_reader(entry.graph_node.name)
    if reader is None:
        return None
    node, slot = reader
    return next((e for e in entries if e.graph_node is node and e.io == "input" and e.slot == slot), None)


def initial_value_entries(entries: list[TensorEntry], graph: Graph, paths: dict[str, str]) -> list[TensorEntry]:
    """Saved initial parameter values (``paths``), as the inputs of the kernels that read the parameters first,
    for the parameters whose pre-update input this step's dump lacks (a dump of op outputs only)."""
    dumped = {(id(e.graph_node), e.slot) for e in entries if e.io == "input" and e.graph_node is not None}
    made = []
    for entry in entries:
        node = entry.graph_node
        if entry.io != "output" or node is None or not node.is_parameter or node.name not in paths:
            continue
        reader = graph.initial_value_reader(node.name)
        if reader is None or (id(reader[0]), reader[1]) in dumped:
            continue
        reader_node, slot = reader
        made.append(replace(entry, path=paths[node.name], node=reader_node.name, op_type=reader_node.op_type,
                            graph_node=reader_node, file=entry.file._replace(io="input", slot=slot,
                                                                        op_type=reader_node.op_type)))
    return made


class _TensorStats:
    """Statistics of one tensor, computed on demand and kept, or read from statistic.csv. Its shared pass (``needs``
    and value ``range``, see _Plan.work_out) answers every watchpoint whose statistics it holds; ``computed``:
    that pass already made (stats.file_stats). The values are read only when a request needs them."""

    def __init__(self, entry: TensorEntry, needs: frozenset[str] = frozenset(),
                 value_range: tuple[float, float] | None = None, computed: TensorStats | None = None):
        self.entry = entry
        self.shared = needs, value_range
        self._array: np.ndarray | None = None
        self._passes: list[tuple[frozenset[str], tuple[float, float] | None, TensorStats]] = []
        self._compared: dict[tuple, TensorStats] = {}
        if computed is not None:
            self._passes.append((needs, value_range, computed))

    @property
    def array(self) -> np.ndarray | None:
        """The tensor's values, read once (None for a statistics-only entry)."""
        if self._array is None and self.entry.stats is None:
            self._array = self.entry.load()
        return self._array

    def get(self, needs: frozenset[str], value_range: tuple[float, float] | None = None,
            previous: np.ndarray | None = None, rtol: float = 1e-5, atol: float = 1e-8,
            together: frozenset[str] | None = None) -> TensorStats:
        """Statistics answering ``needs``: from a pass made already when one holds them, else from the shared
        pass when it would, else from one pass computing ``together`` (a superset, for several watchpoints)."""
        if self.entry.stats is not None:
            missing = set(needs) - self.entry.available
            if missing == {"nonfinite"} and len(needs) > 1:  # judge the bound; the caller says what is unknown
                missing = set()
            if missing:
                raise NeedsTensorData(", ".join(sorted(missing)))
            return self.entry.stats
        if previous is not None:
            key = (needs, rtol, atol)
            if key not in self._compared:
                self._compared[key] = compute_stats(self.array, needs, previous=previous, rtol=rtol, atol=atol,
                                                    dtype_hint=self.entry.dtype)
            return self._compared[key]
        for held, held_range, stats in self._passes:
            if needs <= held and (held_range == value_range or "range_count" not in needs):
                return stats
        shared_needs, shared_range = self.shared
        if needs <= shared_needs and (shared_range == value_range or "range_count" not in needs):
            needs, value_range = shared_needs, shared_range
        elif together is not None:
            needs = together | needs
        stats = compute_stats(self.array, needs, value_range=value_range, dtype_hint=self.entry.dtype)
        self._passes.append((needs, value_range, stats))
        return stats


class NeedsTensorData(MsdbgError):
    """A statistics-only dump cannot answer what a watchpoint needs (the message lists the missing statistics)."""


@dataclass(frozen=True)
class StepContext:
    """What the session knows about the step beyond its tensors: whether it is the first training step of its
    family (weights still initial), whether it trains (eval steps update nothing: no initial or change
    conditions there), and the parameters an optimizer of the family updates (None: unknown)."""

    first_step: bool
    training: bool = True
    trained: frozenset[str] | None = None

    def judges(self, watchpoint: Watchpoint, entry: TensorEntry) -> bool:
        condition = watchpoint.condition
        if condition.cross_rank or condition.per_step or condition.labels or (condition.initial and not self.first_step):
            return False
        if not self.training and (condition.initial or condition.needs_previous):
            return False
        return not (condition.trained_only and self.trained is not None and entry.param not in self.trained)


def evaluate_step(entries: list[TensorEntry], watchpoints: list[Watchpoint], graph: Graph | None,
                  history: History, context: StepContext | None = None,
                  record: frozenset[str] = frozenset()) -> StepResult:
    """Evaluate every watchpoint on every tensor it watches in this step; mark the origins of the hits.

    Without ``context`` the first iteration of each graph counts as its first training step. ``record``:
    statistics (stats.STAT_NAMES) to compute too, in the same pass, for every evaluated tensor; they come back
    in ``StepResult.recorded`` (the flight recorder).
    """
    result = StepResult()
    if context is None:
        first = bool(entries) and history.is_first_step(entries[0].step.rank, entries[0].step.net,
                                                        entries[0].step.graph, entries[0].step.iteration)
        context = StepContext(first)
    inputs_dumped = any(entry.io == "input" for entry in entries)  # else the next step has no pre-update copies
    if context.first_step and context.training and history.initial_values and graph is not None:
        made = initial_value_entries(entries, graph, history.initial_values)
        if made:
            entries = [*entries, *made]
            history.initial_values = {}
    judged = [w for w in watchpoints if not w.condition.cross_rank and not w.condition.labels
              and not w.condition.per_step]
    plan = _Plan(judged, record)
    targets = _targets_of(judged)
    watched = [(entry, watching) for entry in entries if evaluated(entry)
               if (watching := tuple(w for w in targets.watching(entry) if context.judges(w, entry)))]
    label_watchers = [w for w in watchpoints if w.condition.labels]
    labels = label_inputs(graph) if label_watchers and graph is not None else {}
    opened = _open_all(watched, plan, frozenset(labels))
    for entry, _ in watched:
        _note_dtype(entry, history, result)
    for entry, watching in watched:
        if not is_float(entry):
            continue
        try:
            _TensorEvaluation(entry, entries, graph, history, result, plan, opened.get(id(entry))).run(
                watching, inputs_dumped)
        except MsdbgError as exc:
            result.errors.append(str(exc))
        except ValueError as exc:  # a tensor the statistics cannot read (e.g. a dtype its file name contradicts)
            result.errors.append(f"tensor file {entry.path}: {exc}")

    def read(entry: TensorEntry) -> np.ndarray:
        ready = opened.get(id(entry))
        return ready.array if ready is not None else entry.load()

    try:
        result.hits.extend(check_labels(entries, graph, label_watchers, history.labels, read, labels))
    except MsdbgError as exc:
        result.errors.append(str(exc))
    mark_origins(result.hits, graph)
    result.notes.extend(_missing_notes(result.missing, entries[0].step if entries else None))
    return result


_NO_PRE_UPDATE = "no pre-update value of {} was dumped; checked the value after the first update"
_NO_PREVIOUS = "no previous step to compare {} with"


def _missing_notes(missing: dict[tuple[int, str], list[str]], step) -> list[str]:
    """One note per watchpoint and kind of gap, naming up to three tensors."""
    notes = []
    for (number, what), names in sorted(missing.items()):
        names = sorted(names)
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        notes.append(f"watchpoint {number}: {what.format(shown)} (graph {step.graph})")
    return notes


def _note_dtype(entry: TensorEntry, history: History, result: StepResult) -> None:
    """One note per tensor and run when its file name and its bytes disagree on the dtype."""
    try:
        note = entry.dtype_note()
    except MsdbgError:
        return  # an unreadable file is reported when it is loaded
    if note is not None and tensor_key(entry) not in history.dtype_noted:
        history.dtype_noted.add(tensor_key(entry))
        result.notes.append(note)


# A step with at least this many tensors to check has them read and their shared statistics computed on two
# threads: file reads and the kernel (from 256 KB) release the GIL, so large tensors are reduced on both cores
# (resnet18: 529 tensors, 196 MB a step). Fewer, small tensors (the tiny MLP: 32) cost more in thread hand-over than they gain.
PARALLEL_MIN_TENSORS = 100
_pool: ThreadPoolExecutor | None = None


def _open_all(watched: list[tuple[TensorEntry, tuple[Watchpoint, ...]]], plan: _Plan,
              kept: frozenset[str]) -> dict[int, _TensorStats]:
    """Read the watched tensors and make the float ones' shared pass (a file's one read also gives its header, so
    the dtype checks after it read nothing more); by id(entry). Files are read and reduced by the compiled kernel
    in one call (stats.file_stats) unless a watchpoint or ``kept`` (parameters: the label inputs the label checks
    read) needs their values after the pass. Large steps are split with a worker thread. A tensor that fails is
    left out: evaluating it again reports the error in order."""
    global _pool
    jobs = [(entry, needs, value_range, batched and entry.param not in kept) for entry, watching in watched
            for needs, value_range, batched in [plan.work_out(watching)]]
    if len(jobs) < PARALLEL_MIN_TENSORS:
        return _open_part(jobs)
    if _pool is None:
        _pool = worker("msdbg-stats")
    other = _pool.submit(_open_part, jobs[1::2])
    ready = _open_part(jobs[0::2])
    ready.update(other.result())
    return ready


def _open_part(jobs: list[tuple]) -> dict[int, _TensorStats]:
    """_open_all's work on (entry, shared needs, shared range, may be batched) jobs."""
    ready = {}
    files = [(entry, needs, value_range) for entry, needs, value_range, batch in jobs
             if batch and entry.loader is None and entry.stats is None]
    read = file_stats([(entry.path, needs, value_range, entry.file.dtype.lower())
                       for entry, needs, value_range in files])
    for (entry, needs, value_range), got in zip(files, read):
        if got is not None:
            layout, stats = got
            entry.keep_layout(layout)
            ready[id(entry)] = _TensorStats(entry, needs, value_range,
                                            stats if stats is not None and is_float(entry) else None)
    for entry, needs, value_range, _ in jobs:  # the rest: values kept, tensors in memory, unusual or bad files
        if id(entry) in ready or (entry.loader is not None and not is_float(entry)):  # in memory: dtype known unread
            continue
        try:
            stats = _TensorStats(entry, needs, value_range)
            if stats.array is not None and needs and is_float(entry):
                stats.get(needs, value_range)
        except (MsdbgError, ValueError, OSError):
            continue
        ready[id(entry)] = stats
    return ready


class _Targets:
    """Which watchpoints watch a tensor, kept by what decides it (node, op type, parameter, category): every step
    of a graph names the same tensors."""

    def __init__(self, watchpoints: list[Watchpoint]):
        self.watchpoints = watchpoints  # held, so the ids in the signature stay theirs
        self.signature = _signature(watchpoints)
        self._known: dict[tuple, tuple[Watchpoint, ...]] = {}

    def watching(self, entry: TensorEntry) -> tuple[Watchpoint, ...]:
        key = (entry.node, entry.op_type, entry.param, entry.category)
        known = self._known.get(key)
        if known is None:
            known = self._known[key] = tuple(w for w in self.watchpoints if w.watches(entry))
        return known


def _signature(watchpoints: list[Watchpoint]) -> tuple:
    """What Watchpoint.watches depends on, besides the tensor."""
    return tuple((id(w), w.enabled, w.condition.name, id(w.target)) for w in watchpoints)


_targets: _Targets | None = None


def _targets_of(watchpoints: list[Watchpoint]) -> _Targets:
    """The last steps' _Targets while the watchpoints are the same, else a new one."""
    global _targets
    targets = _targets
    if targets is None or targets.signature != _signature(watchpoints):
        targets = _targets = _Targets(watchpoints)
    return targets


class _Plan:
    """What each watchpoint needs, worked out once per step rather than once per tensor; ``record``: what the
    flight recorder keeps of every evaluated tensor, computed in the same pass."""

    def __init__(self, watchpoints: list[Watchpoint], record: frozenset[str] = frozenset()):
        self.needs = {w.number: _needs_of(w) for w in watchpoints}
        self.ranges = {w.number: _value_range(w) for w in watchpoints if w.condition.needs_range}
        self.record = record
        self._shared: dict[tuple[int, ...], tuple[frozenset[str], tuple[float, float] | None, bool]] = {}

    def work_out(self, watching: tuple[Watchpoint, ...]) -> tuple[frozenset[str], tuple[float, float] | None, bool]:
        """The statistics and value range of the one pass that answers all of ``watching`` judged on plain
        statistics (and a value range, when they ask for one only) and the record; whether that pass is all they
        read of the tensor's values (no copy kept, no comparison, no second range, no initial value)."""
        numbers = tuple(w.number for w in watching)
        known = self._shared.get(numbers)
        if known is None:
            ranges = {self.ranges[w.number] for w in watching if _on_values(w) and w.condition.needs_range}
            value_range = next(iter(ranges)) if len(ranges) == 1 else None
            needs = self.record.union(*(self.needs[w.number] for w in watching if _on_values(w) and (
                not w.condition.needs_range or value_range is not None)))
            known = self._shared[numbers] = needs, value_range, len(ranges) < 2 and all(map(_on_values, watching))
        return known


class _TensorEvaluation:
    """All watchpoints on one tensor of one step."""

    def __init__(self, entry: TensorEntry, entries: list[TensorEntry], graph: Graph | None, history: History,
                 result: StepResult, plan: _Plan, current: _TensorStats | None = None):
        self.entry, self.entries, self.graph, self.history, self.result = entry, entries, graph, history, result
        self.plan = plan
        self.key = tensor_key(entry)
        if current is None:
            current = _TensorStats(entry)
            _ = current.array  # the step's read left it out: a bad file's error is raised here, before it counts
        self.current = current

    @cached_property
    def before(self) -> TensorEntry | None:
        """The parameter's pre-update copy in this step, looked up only for conditions that need it."""
        return pre_update_entry(self.entry, self.entries, self.graph)

    @cached_property
    def before_stats(self) -> _TensorStats:
        """Statistics of the pre-update copy, read once for every initial watchpoint."""
        return _TensorStats(self.before)

    def run(self, watching: tuple[Watchpoint, ...], inputs_dumped: bool) -> None:
        """Judge every watchpoint; keep a copy for the next step's change conditions when its dump will hold no
        pre-update copy (``inputs_dumped`` False: the step's dump has op outputs only); add the tensor's statistics
        to the result when the plan records them (computed with the plain watchpoints' in one pass)."""
        self.result.tensors_checked += 1
        # one pass over the pre-update value serves every initial watchpoint (weight_initialization, _symmetric, ...)
        self.initial_needs = frozenset().union(*(self.plan.needs[w.number] for w in watching if w.condition.initial))
        for watchpoint in watching:
            if watchpoint.condition.kind == "frozen":
                self._vote_unchanged(watchpoint)
                continue
            try:
                stats = self._stats_for(watchpoint)
            except NeedsTensorData as exc:
                self.result.notes.append(
                    f"watchpoint {watchpoint.number} ({watchpoint.condition.name}) needs tensor data: this dump holds "
                    f"statistics only (statistic.csv), without {exc}; not evaluated there")
                continue
            if stats is not None:
                self._judge(watchpoint, stats)
                if self.entry.stats is not None and "nonfinite" not in self.entry.available:
                    self.result.notes.append(
                        f"watchpoint {watchpoint.number} ({watchpoint.condition.name}): statistic.csv has no NaN/Inf "
                        "count columns, so a tensor whose max or min is NaN/Inf there could not be judged")
        if self.plan.record:
            stats = self.entry.stats if self.entry.stats is not None else self.current.get(self.plan.record)
            self.result.recorded.append((self.entry, stats))
        needs_copy = any(w.condition.needs_previous for w in watching) and (self.before is None or not inputs_dumped)
        if needs_copy and self.entry.stats is None:
            self.history.remember(self.key, self.current.array)

    @cached_property
    def digests(self) -> tuple[int | None, int | None]:
        """(previous, current) digests of the tensor's bytes; the current one is kept for the next step. The
        previous one is the last step's, else the pre-update copy's (None when neither exists). The current one
        comes from the tensor's shared pass (the kernel hashes the bytes as it reduces them)."""
        if self.entry.stats is not None:  # statistics only
            return None, None
        current = self.current.get(_DIGEST).digest
        previous = self.history.swap_digest(self.key, current)
        if previous is None and self.before is not None:
            previous = self.before_stats.get(_DIGEST).digest
        return previous, current

    def _vote_unchanged(self, watchpoint: Watchpoint) -> None:
        """weight_frozen: whether the weight is bit for bit what it was, judged over the step by engine/frozen.py.
        A 64-bit digest of its bytes (stats.py 'digest': a changed weight keeps it with odds of about 2**-64; the
        NumPy fallback's CRC-32, 2**-32), not a copy, is kept per weight between steps."""
        previous, current = self.digests
        if previous is not None:
            self.result.unchanged.append((watchpoint, self.entry, previous == current))

    def _stats_for(self, watchpoint: Watchpoint) -> TensorStats | None:
        condition, params = watchpoint.condition, watchpoint.params
        needs = self.plan.needs[watchpoint.number]
        name = self.entry.param or self.entry.node
        if self.entry.stats is not None and not condition.initial:  # statistic.csv: its columns or nothing
            return self.current.get(needs)
        if condition.initial:
            if self.before is None:
                self.result.missing.setdefault((watchpoint.number, _NO_PRE_UPDATE), []).append(name)
                return self.current.get(needs, together=self.initial_needs)
            return self.before_stats.get(needs, together=self.initial_needs)
        if condition.needs_previous:
            previous = self.before.load() if self.before is not None else self.history.previous(self.key)
            if previous is None:
                self.result.missing.setdefault((watchpoint.number, _NO_PREVIOUS), []).append(name)
                return None
            if np.shape(previous) != np.shape(self.current.array):
                self.result.notes.append(
                    f"watchpoint {watchpoint.number}: {name} changed shape from {np.shape(previous)} to "
                    f"{np.shape(self.current.array)} at step {self.entry.step.iteration}; not compared there")
                return None
            return self.current.get(needs, previous=previous, rtol=params.get("rtol", 1e-5),
                                    atol=params.get("atol", 1e-8))
        if condition.needs_range:
            return self.current.get(needs, value_range=self.plan.ranges[watchpoint.number])
        return self.current.get(needs)

    def _judge(self, watchpoint: Watchpoint, stats: TensorStats) -> None:
        condition, params = watchpoint.condition, watchpoint.params
        if condition.history:
            verdict = self.history.judge_turbulence(condition, self.key, watchpoint.number, stats, params)
        else:
            verdict = condition.evaluate(stats, params)
        if verdict.hit:
            node = self.entry.graph_node
            source = node.user_source() if node is not None else None
            reasons = verdict.reasons
            if self.entry.category == "input" and stats.nonfinite_count and self.entry.stats is None:
                reasons += tuple(filter(None, [bad_samples(self.current.array)]))
            self.result.hits.append(Hit(watchpoint.number, condition.name, self.entry, stats.as_dict(), dict(params),
                                        reasons, source=str(source) if source else None))


def _value_range(watchpoint: Watchpoint) -> tuple[float, float]:
    params = watchpoint.params
    return params.get("range_start_inclusive", -np.inf), params.get("range_end_inclusive", np.inf)


def _on_values(watchpoint: Watchpoint) -> bool:
    """Whether statistics of the tensor's current values alone answer the watchpoint (its history of earlier
    steps' statistics aside): no copy of the values, no pre-update value."""
    condition = watchpoint.condition
    return not (condition.needs_previous or condition.initial)


_DIGEST = frozenset({"digest"})


def _needs_of(watchpoint: Watchpoint) -> frozenset[str]:
    """The statistics the watchpoint reads here: its condition's, and weight_frozen's digest of the bytes (tensor
    data only; left out of stat_needs, which decides whether a statistic dump is enough)."""
    needs = frozenset(watchpoint.condition.stat_needs(watchpoint.params))
    return needs | _DIGEST if watchpoint.condition.kind == "frozen" else needs
