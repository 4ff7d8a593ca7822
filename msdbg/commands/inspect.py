"""Inspection commands: list, print, stats, hist, diff, node, inputs, outputs, trace, eval, save."""

from __future__ import annotations

import math
import re
from typing import NamedTuple

import numpy as np

from msdbg.commands.registry import command
from msdbg.commands.tensor_names import StepNames, split_slice
from msdbg.engine.evaluate import evaluated, is_float
from msdbg.engine.hits import Hit
from msdbg.engine.stats import STAT_NAMES, compute_stats
from msdbg.engine.trace import origin_chain
from msdbg.engine.watchpoints import TargetPattern
from msdbg.errors import MsdbgError, UsageError
from msdbg.frontends.report import format_stats
from msdbg.numeric import COUNT, Range, parse_int
from msdbg.repl import render
from msdbg.repl.layout import shorten, table, terminal_width
from msdbg.session import Session
from msdbg.store.dumpdir import StepKey, TensorEntry
from msdbg.store.graph import Graph, Node

_CATEGORY_FLAGS = {"--weights": "weight", "--gradients": "gradient", "--activations": "activation",
                   "--optimizer": "optimizer_state", "--inputs": "input"}
_FULL_STATS = STAT_NAMES - {"change", "range_count", "nonfinite", "identical_rows", "digest"}
HIST_BINS = Range(1, 1000, integer=True)  # one text line per bin


def _tensor(session: Session, text: str) -> tuple[TensorEntry, np.ndarray]:
    """Resolve ``NAME[slice]`` at the current step and return the entry and the (sliced) array."""
    name, index = split_slice(text)
    entry = session.current_derived(StepNames).resolve(name)
    array = entry.load()
    if index is not None:
        try:
            array = array[render.parse_slice(index)]
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        except IndexError as exc:
            raise UsageError(f"{text}: {exc} (shape {entry.load().shape})") from None
    return entry, np.asarray(array) if np.ndim(array) == 0 else array


def _one(args: list[str], usage: str) -> str:
    """The single TENSOR/NODE argument (a slice with spaces, ``w[0, :3]``, arrives split in words)."""
    text, rest = split_tensor_arg(args)
    if not text or rest:
        raise UsageError(f"usage: {usage}")
    return text


def split_tensor_arg(args: list[str]) -> tuple[str, list[str]]:
    """Join the words of a leading ``NAME[slice]`` argument; return it and the remaining words."""
    depth, taken = 0, 0
    for word in args:
        depth += word.count("[") - word.count("]")
        taken += 1
        if depth <= 0:
            break
    return " ".join(args[:taken]), args[taken:]


_LIST_SORTS = ("order", "size", "name")
_LIST_FILTERS = ("nonfinite", "zero", "changed")
_LIST_HEADERS = ("name", "op", "category", "shape", "dtype", "size", "")
_LIST_USAGE = ("list [PATTERN] [--weights|--gradients|--activations|--optimizer|--inputs] [-s order|size|name] "
               "[-f nonfinite|zero|changed]")


@command("list", _LIST_USAGE,
         "List the current step's tensors (by scope, or sorted by size or name with -s) with name, op, category, "
         "shape, dtype, size and a health mark (! NaN/Inf, 0 all zero); -f keeps the non-finite, all-zero or "
         "changed ones; PATTERN is a glob (re:REGEX for a regex).", aliases=("ls",))
def list_(session: Session, args: list[str]) -> str:
    options, words = _list_options(args)
    patterns = [a for a in words if not a.startswith("--")]
    if len(patterns) > 1:
        raise UsageError("list takes at most one PATTERN", arg=args.index(patterns[1]))
    categories = {_CATEGORY_FLAGS[a] for a in words if a in _CATEGORY_FLAGS}
    pattern = TargetPattern.parse(patterns[0]) if patterns else None
    listing = session.current_derived(_ListRows)
    rows = listing.rows
    if categories:
        rows = [row for row in rows if row.category in categories]
    if pattern is not None:
        rows = _matching_rows(rows, pattern)
    marks = _health_marks(session, rows, options.get("-f") in ("nonfinite", "zero"))
    if "-f" in options:
        rows = _filtered(session, rows, options["-f"], marks)
    if not rows:
        return "No tensors match."
    sort = options.get("-s", "order")
    if sort == "order":
        return listing.render(rows, marks)
    rows = sorted(rows, key=(lambda r: -r.size) if sort == "size" else (lambda r: r.entry.node))
    return _flat_table(rows, marks)


def _list_options(args: list[str]) -> tuple[dict[str, str], list[str]]:
    """-s SORT and -f FILTER, checked; the other words (PATTERN, category flags)."""
    options, words, index = {}, [], 0
    while index < len(args):
        word = args[index]
        if word in ("-s", "-f"):
            accepted = _LIST_SORTS if word == "-s" else _LIST_FILTERS
            if index + 1 >= len(args) or args[index + 1] not in accepted:
                raise UsageError(f"list {word} takes one of: {', '.join(accepted)}", arg=min(index + 1, len(args) - 1))
            options[word] = args[index + 1]
            index += 2
            continue
        if word.startswith("-") and word not in _CATEGORY_FLAGS:
            raise UsageError(f"list: unknown option {word}; accepted: {', '.join(_CATEGORY_FLAGS)}, -s, -f", arg=index)
        words.append(word)
        index += 1
    return options, words


def _health_marks(session: Session, rows: list["_ListRow"], compute: bool) -> dict[str, str]:
    """label -> '!' (NaN/Inf) or '0' (all zero), from the step's recorded statistics; with ``compute``, the
    tensors not recorded are read (a filter asks for every tensor's health)."""
    health: dict[str, tuple[int, int, int]] = {}
    try:
        health = session.recording().health(session.current)
    except UsageError:
        pass
    marks = {}
    for row in rows:
        known = health.get(row.entry.label)
        if known is None and row.entry.stats is not None:
            stats = row.entry.stats
            known = (stats.nonfinite_count or 0, stats.zero or 0, stats.size)
        if known is None and compute and is_float(row.entry):
            try:
                stats = compute_stats(row.entry.load(), {"nonfinite", "zero"}, dtype_hint=row.entry.dtype)
            except MsdbgError:
                continue
            known = (stats.nonfinite_count, stats.zero, stats.size)
        if known is not None:
            bad, zero, size = known
            marks[row.entry.label] = "!" if bad else "0" if size and zero == size else ""
    return marks


def _filtered(session: Session, rows: list["_ListRow"], kind: str, marks: dict[str, str]) -> list["_ListRow"]:
    if kind == "nonfinite":
        return [row for row in rows if marks.get(row.entry.label) == "!"]
    if kind == "zero":
        return [row for row in rows if marks.get(row.entry.label) == "0"]
    changed = session.recording().changed(session.current)
    if changed is None:
        raise UsageError("list -f changed compares with the previous recorded step; this is the first one")
    return [row for row in rows if row.entry.label in changed]


class _ListRow(NamedTuple):
    """One tensor as ``list`` shows it, with copies of what the filters read (reading them through 100k+ entries
    scattered in memory took longer than the filtering itself)."""

    scope: str
    entry: TensorEntry
    cells: tuple[str, ...]  # name, op, category, shape, dtype, size
    category: str
    names: str  # the text a glob's literal piece must be found in (see _matching_rows)
    size: int


class _ListRows:
    """A step's evaluated tensors as ``list`` rows, by scope (scopes sorted), in execution order within one, with
    each row's aligned text made once (a 100k-tensor step lists in a join)."""

    def __init__(self, entries: list[TensorEntry]):
        self.rows = [_list_row(entry) for entry in entries if evaluated(entry)]
        self.rows.sort(key=lambda row: row.scope)
        widths = [max([len(h)] + [len(r.cells[i]) for r in self.rows]) for i, h in enumerate(_LIST_HEADERS[:6])]
        excess = sum(widths) + 2 * 5 + 2 + 3 - terminal_width()  # separators, the row indent and the mark
        for column, narrowest in ((2, 16), (0, 12)):  # the category (with its parameter), then the name give way
            if excess > 0:
                cut = min(excess, max(widths[column] - narrowest, 0))
                widths[column] -= cut
                excess -= cut
        self.lines = {id(row): "  " + _cells_text(row.cells, widths) for row in self.rows}
        self.header = "  " + _cells_text(_LIST_HEADERS[:6], widths)

    def render(self, rows: list[_ListRow], marks: dict[str, str]) -> str:
        lines, scope = [self.header.rstrip()], None
        for row in rows:
            if row.scope != scope:
                scope = row.scope
                lines.append(scope)
            mark = marks.get(row.entry.label, "")
            lines.append(f"{self.lines[id(row)]}  {mark}" if mark else self.lines[id(row)].rstrip())
        return "\n".join(lines)


def _cells_text(cells: tuple[str, ...], widths: list[int]) -> str:
    """The cells padded to ``widths``: names shortened from the left, the category cut at the right, size right."""
    name, op, category, *rest = cells
    parts = [shorten(name, widths[0]).ljust(widths[0]), op.ljust(widths[1]),
             (category if len(category) <= widths[2] else category[:widths[2] - 1] + "…").ljust(widths[2]),
             rest[0].ljust(widths[3]), rest[1].ljust(widths[4]), rest[2].rjust(widths[5])]
    return "  ".join(parts)


def _flat_table(rows: list[_ListRow], marks: dict[str, str]) -> str:
    """Sorted rows in one table, each named by its full name (shortened from the left to fit)."""
    cells = [[row.entry.param if row.entry.file.is_parameter else row.entry.node, *row.cells[1:],
              marks.get(row.entry.label, "")] for row in rows]
    return table(_LIST_HEADERS, cells, terminal_width(), shrink=0, right=(5,))


def _list_row(entry: TensorEntry) -> _ListRow:
    shape = entry.graph_node.shape if entry.graph_node is not None and entry.slot == 0 else None
    if shape is None and entry.stats is not None:
        shape = entry.stats.shape
    name = entry.param if entry.file.is_parameter else entry.node.rsplit("/", 1)[-1]
    slot = f":{entry.slot}" if entry.slot else ""
    category = entry.category + (f" {entry.param}" if entry.param and not entry.file.is_parameter else "")
    size = math.prod(shape) if shape is not None else 0
    scope = entry.node.rsplit("/", 1)[0] if "/" in entry.node else "(parameters)"
    cells = (f"{name}{slot}", entry.op_type, category, _shape_text(shape), entry.dtype,
             str(size) if shape is not None else "?")
    return _ListRow(scope, entry, cells, entry.category, f"{entry.node}\n{entry.op_type}\n{entry.param or ''}", size)


def _shape_text(shape: tuple[int, ...] | None) -> str:
    if shape is None:
        return "?"
    return "(" + ",".join(map(str, shape)) + ")"


def _matching_rows(rows: list[_ListRow], pattern: TargetPattern) -> list[_ListRow]:
    """The rows whose tensor ``pattern`` matches.

    A glob matches one of a tensor's names (full name, its parts and scopes, op type, parameter name), and each
    of those is part of the full name, the op type or the parameter name; so a tensor none of which holds the
    glob's longest literal piece is left out without matching the glob against all its names.
    """
    piece = _longest_literal(pattern)
    return [row for row in rows if piece in row.names and pattern.matches(row.entry)]


def _longest_literal(pattern: TargetPattern) -> str:
    """The longest run of plain characters before any ``[`` of a glob ('' for a regular expression)."""
    if pattern.regex is not None:
        return ""
    return max(re.split(r"[*?]", pattern.text.split("[", 1)[0]), key=len)


@command("print", "print TENSOR[numpy-slice] [-a]",
         "Print a tensor (summarised when big; -a prints every element). Names: see 'help names'.",
         aliases=("p",))
def print_(session: Session, args: list[str]) -> str:
    full = "-a" in args
    entry, array = _tensor(session, _one([a for a in args if a != "-a"], "print TENSOR[slice] [-a]"))
    header = f"{entry.param or entry.node} ({entry.category}, {entry.op_type} {entry.io} {entry.slot}, step " \
             f"{entry.step.iteration})"
    return header + "\n" + render.format_array(array, full=full, color=session.color)


@command("stats", "stats TENSOR[numpy-slice]", "Show a tensor's statistics.")
def stats(session: Session, args: list[str]) -> str:
    text = _one(args, "stats TENSOR")
    recorded = session.current_derived(StepNames).resolve(split_slice(text)[0]).stats
    if recorded is not None and split_slice(text)[1] is None:  # a recording (msdbg open): its statistics
        return render.stats_table(recorded.as_dict(), color=session.color)
    entry, array = _tensor(session, text)
    result = compute_stats(array, _FULL_STATS, dtype_hint=entry.dtype)
    return render.stats_table(result.as_dict(), color=session.color)


@command("hist", "hist TENSOR[numpy-slice] [BINS]", "ASCII histogram of a tensor's finite values.")
def hist(session: Session, args: list[str]) -> str:
    text, rest = split_tensor_arg(args)
    if not text or len(rest) > 1:
        raise UsageError("usage: hist TENSOR[slice] [BINS]")
    bins = parse_int(rest[0], "hist BINS", HIST_BINS, arg=len(args) - 1) if rest else 20
    _, array = _tensor(session, text)
    return render.histogram(array, bins=bins, color=session.color)


@command("diff", "diff TENSOR STEP_A STEP_B | diff TENSOR", "Compare a tensor at two steps still on disk, or (after "
         "'compare RUN') with its partner in RUN.")
def diff(session: Session, args: list[str]) -> str:
    text, steps = split_tensor_arg(args)
    if text and not steps:
        from msdbg.commands.compare import diff_with_other_run  # not at the top: compare imports the front ends

        return diff_with_other_run(session, text)
    if len(steps) != 2:
        raise UsageError("usage: diff TENSOR STEP_A STEP_B")
    numbers = [parse_int(s, f"diff STEP_{'AB'[i]}", COUNT, arg=len(args) - 2 + i) for i, s in enumerate(steps)]
    entry, _ = _tensor(session, text)
    arrays = []
    for step in numbers:
        key = next((k for k in session.retained_steps(entry.step) if k.iteration == step), None)
        if key is None:
            kept = ", ".join(str(k.iteration) for k in session.retained_steps(entry.step))
            raise UsageError(f"step {step} is not on disk; retained steps: {kept or 'none'}")
        match = next((e for e in session.dump.tensors(key) if e.label == entry.label), None)
        if match is None:
            raise UsageError(f"{text} was not dumped at step {step}")
        arrays.append(match.load())
    return render.diff_summary(arrays[0], arrays[1], label_a=f"step {steps[0]}", label_b=f"step {steps[1]}",
                               color=session.color)


def _graph(session: Session) -> Graph:
    session.current_entries()
    graph = session.dump.graph_of(session.current)
    if graph is None:
        problem = session.dump.graph_errors.get((session.current.rank, session.current.graph), "no graph file")
        raise UsageError(f"graph walking needs the graph: {problem}")
    return graph


def _node(session: Session, text: str) -> Node:
    graph = _graph(session)
    name = split_slice(text)[0]
    if name in graph.nodes and graph.nodes[name].is_parameter:
        return graph.nodes[name]
    if name in graph.by_full_name:
        return graph.by_full_name[name]
    suffix = graph.nodes_with_suffix(name)
    if len(suffix) == 1:
        return suffix[0]
    return session.current_derived(StepNames).resolve(name).graph_node or _unknown_node(name)


def _unknown_node(name: str) -> Node:
    raise UsageError(f"{name!r} is not a node of the graph")


def _describe(graph: Graph, node: Node) -> str:
    source = node.user_source()
    where = f"  {source}" if source else ""
    return f"{node.op_type} {node.full_name}{where}"


@command("node", "node NODE", "Show a node: op type, scope, shape, dtype, inputs, consumers and its source trace.",
         aliases=("ni",))
def node(session: Session, args: list[str]) -> str:
    graph = _graph(session)
    target = _node(session, _one(args, "node NODE"))
    lines = [f"{target.op_type} {target.full_name}"]
    if target.scope:
        lines.append(f"  scope: {target.scope}")
    if target.shape:
        lines.append(f"  shape: {target.shape}")
    if target.dtype:
        lines.append(f"  dtype: {target.dtype}")
    for slot, name in enumerate(target.inputs):
        source = graph.nodes.get(name)
        shape = f"  {source.shape}" if source is not None and (source.shape or source.is_parameter) else ""
        lines.append(f"  input {slot}: {source.op_type + ' ' + source.full_name if source else name}{shape}")
    for consumer in graph.consumers(target.name):
        lines.append(f"  consumer: {consumer.op_type} {consumer.full_name}")
    if target.source:
        lines.append("  source:")
        lines.extend(f"    {entry}" for entry in target.source)
    return "\n".join(lines)


def _walk(session: Session, args: list[str], verb: str, upstream: bool) -> str:
    depth = 1
    if "-r" in args:
        at = args.index("-r")
        if at + 1 >= len(args):
            raise UsageError(f"usage: {verb} NODE [-r DEPTH]")
        depth = parse_int(args[at + 1], f"{verb} -r DEPTH", COUNT, arg=at + 1)
        args = args[:at] + args[at + 2:]
    graph = _graph(session)
    start = _node(session, _one(args, f"{verb} NODE [-r DEPTH]"))
    lines = [_describe(graph, start)]

    def neighbours(node: Node) -> list[Node]:
        return [graph.nodes[n] for n in node.inputs if n in graph.nodes] if upstream else graph.consumers(node.name)

    # depth first without recursion; a node reached again is listed but not expanded again (diamonds in a
    # big graph would otherwise repeat whole subtrees, exponentially in DEPTH)
    shown = {start.name}
    pending = [(n, 1) for n in reversed(neighbours(start))] if depth >= 1 else []
    while pending:
        current, level = pending.pop()
        again = current.name in shown
        lines.append("  " * level + ("<- " if upstream else "-> ") + _describe(graph, current)
                     + (" (shown above)" if again else ""))
        if not again:
            shown.add(current.name)
            if level < depth:
                pending.extend((n, level + 1) for n in reversed(neighbours(current)))
    return "\n".join(lines)


@command("inputs", "inputs NODE [-r DEPTH]", "The nodes feeding NODE, DEPTH levels up (default 1).",
         aliases=("li",))
def inputs(session: Session, args: list[str]) -> str:
    return _walk(session, args, "inputs", upstream=True)


@command("outputs", "outputs NODE [-r DEPTH]", "The nodes consuming NODE, DEPTH levels down (default 1).",
         aliases=("lo",))
def outputs(session: Session, args: list[str]) -> str:
    return _walk(session, args, "outputs", upstream=False)


@command("trace", "trace [HIT]", "The chain from a hit (number from 'info hits'; default: the last hit of the "
         "current step) back to its origin, with op types, statistics and source lines.")
def trace(session: Session, args: list[str]) -> str:
    if not session.hits:
        raise UsageError("no hits to trace")
    if args:
        if len(args) != 1:
            raise UsageError(f"usage: trace [HIT] with HIT between 1 and {len(session.hits)} (see 'info hits')")
        hit = session.hits[parse_int(args[0], "trace HIT (see 'info hits')", Range(1, len(session.hits), integer=True),
                                     arg=0) - 1]
        same_step = _hits_at(session, hit.entry.step)
    else:
        same_step = _hits_at(session, session.current) or _hits_at(session, session.hits[-1].entry.step)
        hit = max(same_step, key=lambda h: h.entry.order)
    graph = session.dump.graph_of(hit.entry.step) if session.dump else None
    chain = origin_chain(hit, same_step, graph)
    lines = [f"trace of {hit.condition} (watchpoint {hit.watchpoint}) at step {hit.step}, from the hit back to its "
             "origin:"]
    for depth, link in enumerate(chain):
        entry = link.entry
        mark = "origin " if link.first_offending or depth == len(chain) - 1 else ""
        lines.append(f"  {'#' + str(depth):>4} {mark}{entry.op_type} {entry.node} ({entry.category}"
                     + (f", {entry.param}" if entry.param else "") + ")")
        lines.append(f"        {format_stats(link.stats)}")
        if link.source:
            lines.append(f"        at {link.source}")
    return "\n".join(lines)


def _hits_at(session: Session, step: StepKey | None) -> list[Hit]:
    return [h for h in session.hits if h.entry.step == step]


_BACKTICK = re.compile(r"`([^`]+)`")


@command("eval", "eval EXPR", "Evaluate a NumPy expression; tensors in backticks: eval np.abs(`fc1.weight`).max()")
def eval_(session: Session, args: list[str]) -> str:
    if not args:
        raise UsageError("usage: eval EXPR")
    expression = " ".join(args)
    namespace: dict[str, object] = {"np": np, "numpy": np}

    def bind(match: re.Match[str]) -> str:
        name = f"_t{len(namespace)}"
        namespace[name] = np.asarray(_tensor(session, match[1])[1])
        return name

    code = _BACKTICK.sub(bind, expression)
    try:
        value = eval(code, {"__builtins__": {}}, namespace)  # noqa: S307  namespace holds only NumPy and tensors
    except Exception as exc:
        raise UsageError(f"eval {expression}: {type(exc).__name__}: {exc}") from None
    if isinstance(value, np.ndarray):
        return render.format_array(value, color=session.color)
    return repr(value)


@command("save", "save TENSOR[numpy-slice] FILE.npy", "Save a tensor (or a slice of it) with numpy.save.")
def save(session: Session, args: list[str]) -> str:
    text, rest = split_tensor_arg(args)
    if len(rest) != 1 or not rest[0].endswith(".npy"):
        raise UsageError("usage: save TENSOR[slice] FILE.npy")
    _, array = _tensor(session, text)
    try:
        np.save(rest[0], np.asarray(array))
    except OSError as exc:
        raise UsageError(f"save {rest[0]}: {exc.strerror}") from None
    return f"Saved {text} {np.shape(array)} to {rest[0]}"
