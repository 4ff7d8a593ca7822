"""``compare RUN``: the current step against the same step of another run's dump; ``diff TENSOR`` then compares
one tensor of this run with its partner there."""

from __future__ import annotations

from dataclasses import dataclass

from msdbg.commands.registry import command
from msdbg.commands.tensor_names import StepNames, split_slice
from msdbg.engine.compare import CompareResult, StepComparer, pair_steps
from msdbg.engine.pairmetrics import Tolerance, compare_arrays
from msdbg.errors import UsageError
from msdbg.frontends.compare_report import format_metrics, report_lines
from msdbg.repl import render
from msdbg.session import Session
from msdbg.store.dumpdir import DumpDir, StepKey

_USAGE = "compare RUN [--rtol X] [--atol Y] [--cosine-lt C]"


@dataclass
class OtherRun:
    """The dump ``compare RUN`` opened, kept on the session for ``diff TENSOR``."""

    dump: DumpDir
    comparer: StepComparer


@command("compare", _USAGE, "Compare the current step with the same step of another run's dump (RUN: a dump "
         "tree); report where they first part ways. Then 'diff TENSOR' compares one tensor with RUN's.")
def compare(session: Session, args: list[str]) -> str:
    paths = _without_options(args)
    if len(paths) != 1:
        raise UsageError(f"usage: {_USAGE}")
    tolerance = _tolerance(args)
    key = _current_step(session)
    other = DumpDir(paths[0])
    comparer = StepComparer(session.dump, other, tolerance)
    key_b = _partner_step(session, other, key)
    result = CompareResult(tolerance, steps=[(key, key_b)])
    comparer.compare(key, key_b, result)
    session.other_run = OtherRun(other, comparer)
    lines = [f"step {key.iteration} (graph {key.graph}) vs {other.root} step {key_b.iteration} "
             f"(graph {key_b.graph}):"] + report_lines(result)
    lines.extend(f"error: {error}" for error in result.errors)
    return "\n".join(lines)


def diff_with_other_run(session: Session, text: str) -> str:
    """``diff TENSOR``: this run's tensor against its partner in the run ``compare RUN`` opened."""
    other: OtherRun | None = session.other_run
    if other is None:
        raise UsageError("usage: diff TENSOR STEP_A STEP_B, or 'compare RUN' first to diff TENSOR with RUN")
    key = _current_step(session)
    name, index = split_slice(text)
    entry = session.current_derived(StepNames).resolve(name)
    key_b = _partner_step(session, other.dump, key)
    pairing = other.comparer.pairing(key, key_b)
    partner = next((b for a, b in pairing.pairs if a.label == entry.label), None)
    if partner is None:
        raise UsageError(f"{text}: {entry.label} has no partner in {other.dump.root} step {key_b.iteration}")
    a, b = entry.load(), partner.load()
    if index is not None:
        try:
            selection = render.parse_slice(index)
            a, b = a[selection], b[selection]
        except (ValueError, IndexError) as exc:
            raise UsageError(f"{text}: {exc}") from None
    try:
        metrics = compare_arrays(a, b, other.comparer.tolerance)
    except ValueError as exc:
        raise UsageError(f"{text}: cannot be compared ({exc})") from None
    header = f"{entry.node} {entry.io} {entry.slot} vs {partner.node} ({other.dump.root} step {key_b.iteration})"
    body = render.diff_summary(a, b, label_a="this run", label_b="RUN", color=session.color)
    return "\n".join([header, body, f"{format_metrics(metrics)} ({other.comparer.tolerance.describe()})"])


def _current_step(session: Session) -> StepKey:
    session.current_entries()  # UsageError when no step has run or it is gone
    return session.current


def _partner_step(session: Session, other: DumpDir, key: StepKey) -> StepKey:
    if key.rank not in other.ranks():
        raise UsageError(f"{other.root} has no rank {key.rank}")
    steps, _ = pair_steps(session.dump, other, rank=key.rank)
    partner = next((b for a, b in steps if a == key), None)
    if partner is None:
        raise UsageError(f"{other.root} has no step that pairs with step {key.iteration} of graph {key.graph}")
    return partner


_OPTIONS = ("--rtol", "--atol", "--cosine-lt")


def _without_options(args: list[str]) -> list[str]:
    words, skip = [], False
    for word in args:
        if skip:
            skip = False
        elif word in _OPTIONS:
            skip = True
        else:
            words.append(word)
    return words


def _tolerance(args: list[str]) -> Tolerance:
    values: dict[str, float] = {}
    for at, word in enumerate(args):
        if word in _OPTIONS:
            if at + 1 >= len(args):
                raise UsageError(f"{word} needs a number", arg=at)
            try:
                values[word] = float(args[at + 1])
            except ValueError:
                raise UsageError(f"{word} {args[at + 1]!r}: not a number", arg=at + 1) from None
    return Tolerance.from_options(values.get("--rtol"), values.get("--atol"), values.get("--cosine-lt"))
