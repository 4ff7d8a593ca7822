"""Session: the debugger state every front end drives through the command layer."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from msdbg.control import RunControl
from msdbg.engine.crossrank import evaluate_across_ranks
from msdbg.engine.diagnose import Finding, diagnose
from msdbg.engine.evaluate import StepResult, evaluate_step
from msdbg.engine.hits import Hit
from msdbg.engine.history import History
from msdbg.engine.loss import step_scalars
from msdbg.engine.stats import SUMMARY_NEEDS
from msdbg.engine.watchpoints import WatchpointList
from msdbg.errors import MsdbgError, UsageError
from msdbg.store.dumpdir import DumpDir, StepKey, TensorEntry
from msdbg.store.recorder import Recorder
from msdbg.store.recording import Recording, as_curve

T = TypeVar("T")


@dataclass
class Session:
    """Watchpoints, hits and the dump being debugged (live capture or an existing dump directory)."""

    dump: DumpDir | Recording | None = None  # the step source: a dump tree, or a recording (msdbg open)
    watchpoints: WatchpointList = field(default_factory=WatchpointList)
    hits: list[Hit] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    done: set[StepKey] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    history: History = field(default_factory=History)
    tensors_checked: int = 0
    current: StepKey | None = None
    control: RunControl | None = None
    color: bool = False
    other_run: object | None = None  # the dump 'compare RUN' opened (commands/compare.py), for 'diff TENSOR'
    rank: int | None = None  # under a launcher: the rank this process evaluates (others share the directory)
    recorder: Recorder | None = None  # the flight recorder this run writes (None: --no-record, or closed)
    record_path: str | None = None  # where it writes (kept after it is closed, for the summary)
    displays: dict[int, str] = field(default_factory=dict)  # display N: what is shown at every pause
    next_display: int = 1
    _recorded_watchpoints: list[str] = field(default_factory=list)
    _reader: Recording | None = None  # reads the live recording through the recorder's connection
    _finished: Recording | None = None  # reads it from its file once the recorder is closed

    def evaluate_new_steps(self) -> list[tuple[StepKey, StepResult]]:
        """Evaluate active watchpoints on every iteration folder not evaluated yet, in order."""
        return [(key, self.evaluate_step(key)) for key in self.new_steps()]

    def new_steps(self) -> list[StepKey]:
        """This rank's iteration folders not evaluated yet, in order."""
        if self.dump is None:
            return []
        return [key for key in self.dump.steps() if key not in self.done and (self.rank is None or key.rank == self.rank)]

    def evaluate_step(self, key: StepKey) -> StepResult:
        """Evaluate the active watchpoints on one iteration folder and record the outcome."""
        graph = self.dump.graph(key.rank, key.graph)
        self._note_graph_problem(key)
        try:
            entries = self.dump.tensors(key)
        except MsdbgError as exc:  # e.g. an unreadable statistic.csv: report it, check the other steps
            entries, result = [], StepResult(errors=[str(exc)])
        else:
            record = SUMMARY_NEEDS if self.recorder is not None else frozenset()
            result = evaluate_step(entries, self.watchpoints.active(), graph, self.history, record)
        self.done.add(key)
        self.hits.extend(result.hits)
        self.errors.extend(result.errors)
        self.notes.extend(n for n in result.notes if n not in self.notes)
        self.tensors_checked += result.tensors_checked
        self.current = key
        if self.recorder is not None:
            self._record(key, entries, result, graph)
        return result

    def _record(self, key: StepKey, entries: list[TensorEntry], result: StepResult, graph) -> None:
        """Write the step to the flight recorder; a failure (disk full, ...) stops recording, never the run."""
        try:
            described = [w.describe() for w in self.watchpoints.items.values()]
            if described != self._recorded_watchpoints:
                self.recorder.record_watchpoints(self.watchpoints.items.values())
                self._recorded_watchpoints = described
            loss, lr, loss_scale = step_scalars(entries, result.recorded, graph)
            self.recorder.record_step(key, training=self.is_training_step(key), tensors=result.recorded,
                                      hits=result.hits, graph=graph, loss=loss, lr=lr, loss_scale=loss_scale)
        except Exception as exc:  # noqa: BLE001  the recorder must not end the training
            self.warnings.append(f"flight recorder {self.recorder.path}: {type(exc).__name__}: {exc}; "
                                 "recording stopped")
            self.recorder = None

    def recording(self) -> Recording:
        """The run's recording (every step's statistics and loss); UsageError when there is none."""
        if isinstance(self.dump, Recording):
            return self.dump
        if self.recorder is not None:
            if self._reader is None or self._reader.db is not self.recorder.db:
                self._reader = Recording(self.recorder.path, db=self.recorder.db)
            return self._reader
        if self.record_path is None:
            raise UsageError("no flight recording in this session (--no-record); only the steps on disk are known")
        if self._finished is None or self._finished.path != self.record_path:
            self._finished = Recording(self.record_path)
        return self._finished

    def evaluate_across_ranks(self, keys: list[StepKey]) -> None:
        """Evaluate cross-rank watchpoints on every (net, graph, iteration) that several of ``keys``' ranks hold."""
        cross = [w for w in self.watchpoints.active() if w.condition.cross_rank]
        if not cross or self.dump is None:
            return
        groups: dict[tuple[str, int, int], dict[int, StepKey]] = defaultdict(dict)
        for key in keys:
            groups[(key.net, key.graph, key.iteration)][key.rank] = key
        if all(len(group) < 2 for group in groups.values()):
            for watchpoint in cross:
                self.notes.append(f"watchpoint {watchpoint.number} ({watchpoint.condition.name}): the dump holds "
                                  "one rank only; nothing to compare")
            return
        for group in groups.values():
            by_rank = {rank: (self.dump.tensors(key), self.dump.graph(rank, key.graph)) for rank, key in group.items()}
            result = evaluate_across_ranks(by_rank, cross)
            self.hits.extend(result.hits)
            self.errors.extend(result.errors)
            self.tensors_checked += result.tensors_checked

    def diagnosis(self) -> tuple[list[Finding], list[str]]:
        """The accuracy guide's causes that the hits (and graphs) point to, and hit conditions none explains."""
        try:
            losses = as_curve(self.recording().scalar_series("loss", self.rank))
        except UsageError:  # no recording: the loss curve is unknown
            losses = []
        return diagnose(self.hits, self.dump.loaded_graphs() if self.dump else [], losses)

    def count_training_steps(self, results: list[tuple[StepKey, StepResult]]) -> int:
        """How many of the evaluated steps are training steps (what 'step N' counts)."""
        return sum(1 for key, _ in results if self.is_training_step(key))

    def is_training_step(self, key: StepKey) -> bool:
        """A step of a graph that updates weights (has optimizer ops), or of any graph when that is unknown."""
        graph = self.dump.graph(key.rank, key.graph) if self.dump else None
        return graph is None or bool(graph.optimizer_ops)

    def current_entries(self) -> list[TensorEntry]:
        """The tensors of the step being looked at; UsageError when there is none yet."""
        self._check_current()
        return self.dump.tensors(self.current)

    def current_derived(self, build: Callable[[list[TensorEntry]], T]) -> T:
        """``build(current_entries())``, built once per step listing (name indexes, ``list`` rows)."""
        self._check_current()
        return self.dump.derived(self.current, build)

    def _check_current(self) -> None:
        if self.dump is None or self.current is None:
            raise UsageError("no step has run yet: 'step' runs one, 'continue' runs until a watchpoint hits")
        if self.current not in set(self.dump.steps()):
            if isinstance(self.dump, Recording):
                raise UsageError(f"step {self.current.iteration} of graph {self.current.graph} is not recorded")
            raise UsageError(f"step {self.current.iteration} of graph {self.current.graph} is no longer on disk "
                             "(--keep-steps)")

    def retained_steps(self, key: StepKey) -> list[StepKey]:
        """Steps of the same rank, net and graph still on disk, oldest first."""
        if self.dump is None:
            return []
        return [k for k in self.dump.steps() if (k.rank, k.net, k.graph) == (key.rank, key.net, key.graph)]

    def _note_graph_problem(self, key: StepKey) -> None:
        problem = self.dump.graph_errors.get((key.rank, key.graph)) if self.dump else None
        if problem:
            message = f"{problem}; nodes are named from file names and trace-back follows execution time"
            if message not in self.warnings:
                self.warnings.append(message)
