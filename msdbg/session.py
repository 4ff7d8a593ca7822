"""Session: the debugger state every front end drives through the command layer."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from msdbg.capture.coverage import Coverage
from msdbg.control import RunControl
from msdbg.engine.crossrank import evaluate_across_ranks
from msdbg.engine.diagnose import Finding, diagnose
from msdbg.engine import frozen, lossscale
from msdbg.engine.evaluate import StepContext, StepResult, evaluate_step
from msdbg.engine.hits import Hit
from msdbg.engine.history import History
from msdbg.engine.loss import step_scalars
from msdbg.engine.stats import SUMMARY_NEEDS
from msdbg.engine.watchpoints import Watchpoint, WatchpointList
from msdbg.errors import MsdbgError, UsageError
from msdbg.store.dumpdir import PYNATIVE_NET, StepKey, TensorEntry
from msdbg.store.families import TRAIN, GraphFamilies, UserStep
from msdbg.store.recorder import Recorder
from msdbg.store.recording import Recording, as_curve
from msdbg.store.steps import CombinedSource, StepSource

T = TypeVar("T")


@dataclass
class Session:
    """Watchpoints, hits and the dump being debugged (live capture or an existing dump directory)."""

    # the step source: a DumpDir, graph dumps and PyNative steps together (store/steps.py), or a recording
    dump: StepSource | Recording | None = None
    watchpoints: WatchpointList = field(default_factory=WatchpointList)
    hits: list[Hit] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    done: set[StepKey] = field(default_factory=set)
    skipped: set[StepKey] = field(default_factory=set)  # in done, not evaluated (see skip_new_steps)
    notes: list[str] = field(default_factory=list)
    history: History = field(default_factory=History)
    tensors_checked: int = 0
    current: StepKey | None = None
    control: RunControl | None = None
    color: bool = False
    other_run: object | None = None  # the dump 'compare RUN' opened (commands/compare.py), for 'diff TENSOR'
    rank: int | None = None  # under a launcher: the rank this process evaluates (others share the directory)
    coverage: Coverage = field(default_factory=Coverage)  # training work no captured graph held (PyNative)
    skips: list[lossscale.Skip] = field(default_factory=list)  # steps a loss scaler skipped
    # (rank, root graph) -> (phase, user steps seen, the last one's number): counts without a set per step
    _steps_seen: dict[tuple[int, int], tuple[str, int, int]] = field(default_factory=dict)
    _families: GraphFamilies | None = None

    @property
    def families(self) -> GraphFamilies | None:
        """Graph families (root graph + control-flow graphs) of the dump: the user's steps."""
        if self.dump is None:
            return None
        graphs = self.dump.sources[0] if isinstance(self.dump, CombinedSource) else self.dump  # the dump tree
        if self._families is None or self._families.dump is not graphs:
            self._families = GraphFamilies(graphs)
        return self._families

    def user_step(self, key: StepKey) -> UserStep:
        if key.net == PYNATIVE_NET:  # a recorded PyNative step: one backward pass and update
            return UserStep(key.rank, -1, TRAIN, key.iteration)
        return self.families.user_step(key)
    recorder: Recorder | None = None  # the flight recorder this run writes (None: --no-record, or closed)
    record_path: str | None = None  # where it writes (kept after it is closed, for the summary)
    displays: dict[int, str] = field(default_factory=dict)  # display N: what is shown at every pause
    next_display: int = 1
    _recorded_watchpoints: list[str] = field(default_factory=list)
    _reader: Recording | None = None  # reads the live recording through the recorder's connection
    _finished: Recording | None = None  # reads it from its file once the recorder is closed

    def evaluate_new_steps(self) -> list[tuple[StepKey, StepResult]]:
        """Evaluate active watchpoints on every iteration folder not evaluated yet, in order."""
        return self.evaluate_keys(self.new_steps())

    def new_steps(self, listed: list[StepKey] | None = None) -> list[StepKey]:
        """This rank's iteration folders not evaluated yet, in order (of ``listed``: the steps when already listed)."""
        if self.dump is None:
            return []
        listed = self.dump.steps() if listed is None else listed
        return [key for key in listed if key not in self.done and (self.rank is None or key.rank == self.rank)]

    def skip_new_steps(self, source: StepSource) -> None:
        """Mark a source's new steps as seen without evaluating them (a graph inside a recorded PyNative step)."""
        new = set(source.steps()) - self.done
        self.done.update(new)
        self.skipped.update(new)

    def evaluate_keys(self, keys: list[StepKey]) -> list[tuple[StepKey, StepResult]]:
        """Evaluate iteration folders grouped into the user's steps (one root iteration and its control-flow
        graphs), in the order the steps ran; step-level reviews (loss scaling, frozen weights) see whole steps."""
        return [pair for group in self.group_steps(keys) for pair in self.evaluate_user_step(group)]

    def group_steps(self, keys: list[StepKey]) -> list[list[StepKey]]:
        """``keys`` as the user's steps: each a list of folders, root graph first; each family's steps in the order
        they ran."""
        groups: dict[tuple, list[StepKey]] = defaultdict(list)
        for key in keys:
            step = self.user_step(key)
            groups[(key.rank, step.root, step.number, key.net)].append(key)
        return [sorted(group, key=lambda k: k.graph) for _, group in sorted(groups.items())]

    def evaluate_user_step(self, keys: list[StepKey]) -> list[tuple[StepKey, StepResult]]:
        """Evaluate the folders of one user step and record the outcome."""
        step = self.user_step(keys[0])
        families = self.families
        training = step.phase == TRAIN
        trained = families.trained(step.rank, step.root) if training else None
        context = StepContext(training and step.number == 0, training, trained or None)
        parts = []
        for key in keys:
            graph = self.dump.graph_of(key)
            self._note_graph_problem(key)
            try:
                entries = self.dump.tensors(key)
            except MsdbgError as exc:  # e.g. an unreadable statistic.csv: report it, check the other steps
                entries, result = [], StepResult(errors=[str(exc)])
            else:
                record = SUMMARY_NEEDS if self.recorder is not None else frozenset()
                result = evaluate_step(entries, self.watchpoints.active(), graph, self.history, context, record)
            parts.append(lossscale.StepGraph(entries, graph, result))
        if training:
            self._review_step(step, parts, trained or frozenset())
        for key, part in zip(keys, parts):
            self._keep(key, step, part.result)
            if self.recorder is not None:
                self._record(key, training, part.entries, part.result, part.graph)
        phase, seen, last = self._steps_seen.get((step.rank, step.root), (step.phase, 0, -1))
        if step.number != last:
            self._steps_seen[(step.rank, step.root)] = (phase, seen + 1, step.number)
        return [(key, part.result) for key, part in zip(keys, parts)]

    def _review_step(self, step: UserStep, parts: list[lossscale.StepGraph], trained: frozenset[str]) -> None:
        """Judgements over the whole step: a loss scaler's skip, weight_frozen."""
        family = (step.rank, step.root)
        active = self.watchpoints.active()
        skip = lossscale.review_step(step, parts, self.history.loss_scale.setdefault(family, lossscale.ScaleState()),
                                     active, self.history.initial_values)
        if skip is not None:
            self.skips.append(skip)
        votes = [vote for part in parts for vote in part.result.unchanged]
        if votes:
            buffers = self.families.gradient_buffers(step.rank, step.root)
            hits = frozen.review_step(step, votes, self.history.frozen.setdefault(family, frozen.FrozenState()),
                                      trained, buffers)
            parts[0].result.hits.extend(hits)

    def _keep(self, key: StepKey, step: UserStep, result: StepResult) -> None:
        for hit in result.hits:
            hit.user_step = step
        self.done.add(key)
        self.hits.extend(result.hits)
        self.errors.extend(result.errors)
        self.errors.extend(p for p in getattr(self.dump, "problems", ()) if p not in self.errors)  # unreadable dump parts
        self.notes.extend(n for n in result.notes if n not in self.notes)
        self.tensors_checked += result.tensors_checked
        self.current = key

    def step_counts(self) -> dict[str, int]:
        """The user's steps evaluated so far, per phase (train, eval); ranks run the same steps (the most of any)."""
        per_root: dict[tuple[str, int], int] = defaultdict(int)
        for (_, root), (phase, seen, _) in self._steps_seen.items():
            per_root[(phase, root)] = max(per_root[(phase, root)], seen)
        counts: dict[str, int] = defaultdict(int)
        for (phase, _), seen in per_root.items():
            counts[phase] += seen
        return dict(counts)

    def evaluate_now(self, watchpoints: list[Watchpoint]) -> StepResult:
        """Evaluate ``watchpoints`` (just created) on the current step, and keep their hits with the others."""
        entries = self.current_entries()
        result = evaluate_step(entries, [w for w in watchpoints if w.enabled], self.dump.graph_of(self.current),
                               self.history)
        self.hits.extend(result.hits)
        self.errors.extend(result.errors)
        self.notes.extend(n for n in result.notes if n not in self.notes)
        return result

    def _record(self, key: StepKey, training: bool, entries: list[TensorEntry], result: StepResult, graph) -> None:
        """Write the step to the flight recorder; a failure (disk full, ...) stops recording, never the run."""
        try:
            described = [w.describe() for w in self.watchpoints.items.values()]
            if described != self._recorded_watchpoints:
                self.recorder.record_watchpoints(self.watchpoints.items.values())
                self._recorded_watchpoints = described
            loss, lr, loss_scale = step_scalars(entries, result.recorded, graph)
            self.recorder.record_step(key, training=training, tensors=result.recorded,
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
            by_rank = {rank: (self.dump.tensors(key), self.dump.graph_of(key)) for rank, key in group.items()}
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

    def is_training_step(self, key: StepKey) -> bool:
        """A folder of a training step (its family computes gradients or updates weights)."""
        return self.user_step(key).phase == TRAIN

    def count_training_steps(self, results: list[tuple[StepKey, StepResult]]) -> int:
        """How many of the user's training steps ``results`` hold (what 'step N' counts)."""
        return len({step for key, _ in results if (step := self.user_step(key)).phase == TRAIN})

    def training_steps_captured(self) -> int:
        """How many evaluated steps are training steps."""
        return sum(1 for key in self.done if self.is_training_step(key))

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
