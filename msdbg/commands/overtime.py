"""The run over time: history, plot (a tensor's statistic or the loss over every step) and grads (this step's
gradients per parameter). Series come from the flight recording; without one, from the steps still on disk."""

from __future__ import annotations

import math

import numpy as np

from msdbg.commands.ranges import is_range, parse_range
from msdbg.commands.registry import command
from msdbg.commands.tensor_names import StepNames, split_slice
from msdbg.engine.evaluate import pre_update_entry
from msdbg.engine.losscurve import loss_symptoms
from msdbg.engine.stats import SUMMARY_NEEDS, TensorStats, compute_stats
from msdbg.errors import MsdbgError, UsageError
from msdbg.repl.chart import fmt, line_chart, sparkline
from msdbg.repl.layout import table, terminal_width
from msdbg.session import Session
from msdbg.store.dumpdir import TensorEntry
from msdbg.store.recorder import STAT_COLUMNS
from msdbg.store.recording import Point, as_curve

SCALARS = ("loss", "lr", "loss_scale")
STATS = (*STAT_COLUMNS, "nonfinite")
_HISTORY_STATS = ("min", "max", "mean", "abs_mean", "l2norm", "nonfinite")


def _entry(session: Session, text: str) -> TensorEntry:
    name, index = split_slice(text)
    if index is not None:
        raise UsageError(f"{text}: the recording holds whole tensors' statistics; drop the [slice]")
    return session.current_derived(StepNames).resolve(name)


def series(session: Session, what: str, stat: str) -> tuple[str, list[Point]]:
    """A title and the points of ``what`` (a tensor name, or loss / lr / loss_scale) over every recorded step."""
    if what in SCALARS:
        points = session.recording().scalar_series(what, session.rank)
        if not points:
            raise UsageError(f"no {what} was found in the recorded steps" + (
                " (the loss is a scalar mean/sum, or the output of a loss cell)" if what == "loss" else ""))
        return what, points
    entry = _entry(session, what)
    name = entry.param if entry.file.is_parameter and entry.param else entry.node
    if entry.category == "gradient" and entry.param:
        name = f"grad:{entry.param}"
    try:
        recording = session.recording()
    except UsageError:
        return f"{name} {stat} (steps on disk)", _series_from_disk(session, entry, stat)
    points = recording.series(entry.step, entry.label, stat)
    if not points:
        raise UsageError(f"{name} is not in the recording: no watchpoint evaluated it ('watch tensor_overflow' "
                         "evaluates, and so records, every tensor)")
    return f"{name} {stat}", points


def _series_from_disk(session: Session, entry: TensorEntry, stat: str) -> list[Point]:
    points = []
    for key in session.retained_steps(entry.step):
        match = next((e for e in session.dump.tensors(key) if e.label == entry.label), None)
        if match is None:
            continue
        try:
            stats = compute_stats(match.load(), SUMMARY_NEEDS, dtype_hint=match.dtype)
        except MsdbgError as exc:
            raise UsageError(str(exc)) from None
        points.append(point_of(key.iteration, stats, stat))
    return points


def point_of(step: int, stats: TensorStats, stat: str) -> Point:
    """One step's ``stat`` of a tensor as a series point."""
    bad = bool(stats.nonfinite_count)
    value = stats.nonfinite_count if stat == "nonfinite" else getattr(stats, stat)
    return Point(step, None if value is None else float(value), bad and stat != "nonfinite")


def _stat(args: list[str], at: int, default: str) -> str:
    if len(args) <= at:
        return default
    if args[at] not in STATS:
        raise UsageError(f"unknown statistic {args[at]!r}; accepted: {', '.join(STATS)}", arg=at)
    return args[at]


@command("history", "history TENSOR|loss|lr [STAT]",
         "A tensor's statistics (or the loss, lr) over every recorded step; with STAT, its value at each step.")
def history(session: Session, args: list[str]) -> str:
    if not 1 <= len(args) <= 2:
        raise UsageError("usage: history TENSOR|loss|lr [STAT]")
    width = terminal_width()
    if args[0] in SCALARS or len(args) == 2:
        title, points = series(session, args[0], _stat(args, 1, "mean"))
        rows = [[str(p.step), "NaN/Inf" if p.nonfinite and p.value is None else fmt(p.value)] for p in points]
        return f"{title}: {len(points)} steps\n" + table(["step", "value"], rows, width, right=(0, 1))
    rows, count = [], 0
    for stat in _HISTORY_STATS:
        title, points = series(session, args[0], stat)
        count = len(points)
        values = [p.value for p in points if p.value is not None]
        rows.append([stat, fmt(points[0].value) if points else "-", fmt(points[-1].value) if points else "-",
                     fmt(min(values)) if values else "-", fmt(max(values)) if values else "-", points])
    span = f"steps {points[0].step}..{points[-1].step}" if points else "no steps"
    text_rows = [row[:5] for row in rows]
    left = table(["stat", "first", "last", "min", "max"], text_rows, width, right=(1, 2, 3, 4)).splitlines()
    room = width - max(map(len, left)) - 2
    if room >= 8:
        left = [left[0]] + [f"{line.ljust(max(map(len, left)))}  {sparkline(row[5], room)}"
                            for line, row in zip(left[1:], rows)]
    return "\n".join([f"{title.rsplit(' ', 1)[0]}: {count} steps ({span})", *left])


@command("plot", "plot TENSOR|loss|lr [STAT] [STEPS]",
         "Line chart over the recorded steps (STAT default mean; STEPS A-B), width of the terminal; NaN/Inf marked.")
def plot(session: Session, args: list[str]) -> str:
    if not args or len(args) > 3:
        raise UsageError("usage: plot TENSOR|loss|lr [STAT] [STEPS]")
    rest = args[1:]
    window = None
    if rest and is_range(rest[-1]):
        window = parse_range(rest.pop(), "step", len(args) - 1)
    if len(rest) > 1 or (rest and args[0] in SCALARS):
        raise UsageError("usage: plot TENSOR|loss|lr [STAT] [STEPS]", arg=len(args) - 1)
    stat = _stat(rest, 0, "mean") if rest else "mean"
    title, points = series(session, args[0], stat)
    if window is not None:
        points = [p for p in points if window[0] <= p.step <= window[1]]
        if not points:
            raise UsageError(f"no recorded step of {title} in {window[0]}-{window[1]}")
    chart = line_chart(points, width=terminal_width(), title=title)
    if args[0] != "loss":
        return chart
    symptoms = loss_symptoms(as_curve(points))
    return "\n".join([chart, *(f"loss curve: {symptom.text}" for symptom in symptoms)])


_GRADS_SORTS = {"order": lambda r: r["order"], "name": lambda r: r["param"],
                "norm": lambda r: -_sortable(r["norm"]), "ratio": lambda r: -_sortable(r["ratio"])}


def _sortable(value: float | None) -> float:
    return -math.inf if value is None or math.isnan(value) else value


@command("grads", "grads [-s order|name|norm|ratio]",
         "Per parameter at the current step: gradient norm, weight norm and update ratio |dw|/|w|, sorted.")
def grads(session: Session, args: list[str]) -> str:
    sort = "order"
    if args:
        if len(args) != 2 or args[0] != "-s" or args[1] not in _GRADS_SORTS:
            raise UsageError(f"usage: grads [-s {'|'.join(_GRADS_SORTS)}]")
        sort = args[1]
    entries = session.current_entries()
    graph = session.dump.graph(session.current.rank, session.current.graph)
    weights = {e.param: e for e in entries if e.file.is_parameter and e.category == "weight" and e.io == "output"}
    rows = []
    for entry in entries:
        if entry.category != "gradient" or not entry.param or entry.io != "output" or entry.slot != 0:
            continue
        weight = weights.get(entry.param)
        rows.append({"param": entry.param, "order": entry.order, "norm": _norm(entry),
                     "weight": _norm(weight) if weight is not None else None,
                     "ratio": _update_ratio(weight, entries, graph) if weight is not None else None,
                     "bad": _nonfinite(entry)})
    if not rows:
        return "No gradients at this step (a graph without an optimizer, or no gradient was dumped)."
    rows.sort(key=_GRADS_SORTS[sort])
    text = [[row["param"], fmt(row["norm"]), fmt(row["weight"]), fmt(row["ratio"]), "!" if row["bad"] else ""]
            for row in rows]
    key = session.current
    return (f"step {key.iteration} (graph {key.graph}): {len(rows)} gradients, sorted by {sort}; ratio = "
            "|w after - w before| / |w before|; ! = NaN/Inf\n"
            + table(["parameter", "grad norm", "weight norm", "update ratio", ""], text, terminal_width(),
                    right=(1, 2, 3)))


def _stats(entry: TensorEntry) -> TensorStats:
    if entry.stats is not None:
        return entry.stats
    return compute_stats(entry.load(), SUMMARY_NEEDS, dtype_hint=entry.dtype)


def _norm(entry: TensorEntry) -> float | None:
    return _stats(entry).l2norm


def _nonfinite(entry: TensorEntry) -> bool:
    return bool(_stats(entry).nonfinite_count)


def _update_ratio(weight: TensorEntry, entries: list[TensorEntry], graph) -> float | None:
    """|w after - w before| / |w before| from the step's pre-update copy (None when the dump has none)."""
    before = pre_update_entry(weight, entries, graph)
    if before is None or weight.stats is not None:
        return None
    old = np.asarray(before.load(), dtype=np.float64)
    new = np.asarray(weight.load(), dtype=np.float64)
    denominator = float(np.linalg.norm(old))
    return float(np.linalg.norm(new - old)) / denominator if denominator else None
