"""Watchpoint commands: watch, delete, enable, disable, info."""

from __future__ import annotations

import sys

from msdbg.commands.ranges import numbers_in, parse_range
from msdbg.commands.registry import command
from msdbg.engine.conditions import CONDITIONS
from msdbg.engine.diagnose import format_findings
from msdbg.engine.recommended import RECOMMENDED
from msdbg.engine.watchpoints import Watchpoint, unknown_condition
from msdbg.errors import UsageError
from msdbg.frontends.report import format_hit, summary
from msdbg.numeric import COUNT, parse_int
from msdbg.session import Session


@command("watch", "watch CONDITION [PARAM=VALUE ...] [on PATTERN] | watch recommended",
         "Create a watchpoint; PATTERN is a glob over node, parameter and scope names (re:REGEX for a regex). "
         "'watch recommended' creates a default set.")
def watch(session: Session, args: list[str]) -> str:
    if not args:
        raise UsageError("watch needs a condition, e.g. 'watch tensor_overflow'")
    if args == ["recommended"]:
        created = [session.watchpoints.add(name, dict(params), target) for name, params, target in RECOMMENDED]
        return "\n".join([*(f"Watchpoint {w.describe()}" for w in created), *_recheck(session, created)])
    condition, rest = args[0], list(enumerate(args[1:], start=1))
    target = None
    words = [word for _, word in rest]
    if "on" in words:
        at = words.index("on")
        if at != len(words) - 2:
            raise UsageError("'on' takes exactly one PATTERN, at the end: watch CONDITION [PARAM=VALUE ...] on PATTERN",
                             arg=rest[at][0])
        target, rest = words[at + 1], rest[:at]
    params, positions = {}, {"": 0}
    for index, word in rest:
        name, sep, value = word.partition("=")
        if not sep or not name or not value:
            raise UsageError(f"expected PARAM=VALUE, got {word!r}", arg=index)
        params[name] = value
        positions[name] = index
    watchpoint = session.watchpoints.add(condition, params, target, positions)
    return "\n".join([f"Watchpoint {watchpoint.describe()}", *_recheck(session, [watchpoint])])


def _recheck(session: Session, created: list[Watchpoint]) -> list[str]:
    """While paused at a step, new watchpoints are evaluated on it at once (MindInsight's recheck)."""
    control = session.control
    if control is None or control.state not in ("paused", "ended") or session.current is None:
        return []
    try:
        result = session.evaluate_now(created)
    except UsageError as exc:  # the step was pruned (--keep-steps): nothing to recheck
        return [f"not checked on the current step: {exc}"]
    lines = [f"msdbg: error: {error}" for error in result.errors]
    if not result.hits:
        return [*lines, f"checked step {session.current.iteration} of graph {session.current.graph}: no hit"]
    return [*lines, f"checked step {session.current.iteration} of graph {session.current.graph}:",
            *summary(result.hits)]


def _numbers(session: Session, args: list[str], verb: str) -> list[int]:
    if not args:
        raise UsageError(f"usage: {verb} N|A-B ... (watchpoint numbers, see 'info watchpoints')")
    return numbers_in(args, list(session.watchpoints.items), "watchpoint")


@command("delete", "delete [N|A-B ...]", "Delete watchpoints N, or a range A-B; no argument: all of them (asked "
         "first at a terminal).")
def delete(session: Session, args: list[str]) -> str:
    if not args:
        count = len(session.watchpoints.items)
        if not count:
            return "No watchpoints."
        if _interactive(session) and not _confirm(f"Delete all {count} watchpoints? (y or n) "):
            return "Nothing deleted."
        session.watchpoints.items.clear()
        return f"Deleted {count} watchpoint{'s' if count != 1 else ''}"
    chosen = _numbers(session, args, "delete")
    for number in chosen:
        del session.watchpoints.items[number]
    return f"Deleted watchpoint{'s' if len(chosen) != 1 else ''} {', '.join(map(str, chosen))}"


def _interactive(session: Session) -> bool:
    """A person at this process's terminal (not a command file, a pipe or an attached client)."""
    remote = session.control is not None and session.control.remote
    return not remote and sys.stdin.isatty() and sys.stdout.isatty()


def _confirm(question: str) -> bool:
    try:
        return input(question).strip().lower() in ("y", "yes")
    except EOFError:
        return False


@command("enable", "enable N|A-B ...", "Enable watchpoints N (or a range A-B).")
def enable(session: Session, args: list[str]) -> str:
    chosen = _numbers(session, args, "enable")
    for number in chosen:
        session.watchpoints.items[number].enabled = True
    return f"Enabled watchpoint{'s' if len(chosen) != 1 else ''} {', '.join(map(str, chosen))}"


@command("disable", "disable N|A-B ...", "Disable watchpoints N (or a range A-B): kept, not evaluated.")
def disable(session: Session, args: list[str]) -> str:
    chosen = _numbers(session, args, "disable")
    for number in chosen:
        session.watchpoints.items[number].enabled = False
    return f"Disabled watchpoint{'s' if len(chosen) != 1 else ''} {', '.join(map(str, chosen))}"


@command("info", "info watchpoints | info hits [-w N] [-s STEPS] [-c CONDITION] | info step | info ranks",
         "Show watchpoints, hits so far (counted per watchpoint; filtered by watchpoint, step A-B or condition), "
         "where training is, or the ranks of the dump.")
def info(session: Session, args: list[str]) -> str:
    what = args[0] if args else ""
    if what and len(args) == 1 and "step".startswith(what):
        return _step_info(session)
    if what and len(args) == 1 and "ranks".startswith(what):
        return _ranks_info(session)
    if what and len(args) == 1 and "watchpoints".startswith(what):
        items = session.watchpoints.items.values()
        return "\n".join(w.describe() for w in items) if items else "No watchpoints."
    if what and "hits".startswith(what):
        return _hits_info(session, args[1:])
    raise UsageError("usage: info watchpoints | info hits [-w N] [-s STEPS] [-c CONDITION] | info step | info ranks",
                     arg=0 if args else None)


_HIT_FILTERS = ("-w", "-s", "-c")


def _hits_info(session: Session, args: list[str]) -> str:
    """Counts per watchpoint, then the hits that pass the filters, numbered as 'trace N' takes them."""
    if len(args) % 2 or any(flag not in _HIT_FILTERS for flag in args[::2]):
        raise UsageError("usage: info hits [-w N] [-s STEP|A-B] [-c CONDITION]", arg=0)
    given = dict(zip(args[::2], args[1::2]))
    numbered = list(enumerate(session.hits, start=1))
    if "-w" in given:
        number = parse_int(given["-w"], "info hits -w (a watchpoint number)", arg=args.index("-w") + 2)
        numbered = [(i, h) for i, h in numbered if h.watchpoint == number]
    if "-s" in given:
        low, high = parse_range(given["-s"], "step", args.index("-s") + 1)
        numbered = [(i, h) for i, h in numbered if low <= h.step <= high]
    if "-c" in given:
        condition = given["-c"]
        if condition not in CONDITIONS:
            raise UsageError(unknown_condition(condition), arg=args.index("-c") + 2)
        numbered = [(i, h) for i, h in numbered if h.condition == condition]
    if not session.hits:
        return "No hits."
    lines = []
    by_watchpoint: dict[int, list] = {}
    for _, hit in numbered:
        by_watchpoint.setdefault(hit.watchpoint, []).append(hit)
    for number, hits in sorted(by_watchpoint.items()):
        steps = sorted({h.step for h in hits})
        span = f"step {steps[0]}" if len(steps) == 1 else f"{len(steps)} steps, {steps[0]}..{steps[-1]}"
        lines.append(f"watchpoint {number} {hits[0].condition}: {len(hits)} hit{'s' if len(hits) != 1 else ''} "
                     f"({span})")
    if not numbered:
        return "No hits match."
    lines.extend(f"#{i} " + format_hit(h) for i, h in numbered)
    return "\n".join(lines)


def _ranks_info(session: Session) -> str:
    if session.dump is None or not session.dump.ranks():
        return "No ranks yet."
    lines = []
    for rank in session.dump.ranks():
        steps = [k for k in session.dump.steps() if k.rank == rank]
        hits = sum(1 for h in session.hits if h.entry.step.rank == rank)
        shown = " (shown)" if session.current is not None and session.current.rank == rank else ""
        span = f"steps {steps[0].iteration}..{steps[-1].iteration} on disk" if steps else "no steps on disk"
        lines.append(f"rank {rank}: {span}, {hits} hits{shown}")
    return "\n".join(lines)


@command("rank", "rank N", "Look at rank N: the same graph and step on that rank (a dump with several ranks).")
def rank(session: Session, args: list[str]) -> str:
    if len(args) != 1:
        raise UsageError("usage: rank N", arg=0 if args else None)
    wanted = parse_int(args[0], "rank N", COUNT, arg=0)
    ranks = session.dump.ranks() if session.dump else []
    if wanted not in ranks:
        raise UsageError(f"no rank {wanted}; ranks: {', '.join(map(str, ranks)) or 'none'}", arg=0)
    steps = [k for k in session.dump.steps() if k.rank == wanted]
    current = session.current
    same = [k for k in steps if current and (k.net, k.graph, k.iteration) == (current.net, current.graph,
                                                                            current.iteration)]
    if not steps:
        raise UsageError(f"rank {wanted} has no steps on disk", arg=0)
    session.current = same[0] if same else steps[-1]
    return f"Rank {wanted}: step {session.current.iteration} ({session.current.place})"


def _step_info(session: Session) -> str:
    state = session.control.state if session.control else "offline"
    key = session.current
    if key is None:
        return f"Training {state}; no step has run yet."
    step = session.user_step(key)
    phase = "step" if step.phase == "train" else "eval step"
    kept = [k.iteration for k in session.retained_steps(key)]
    return (f"Training {state}; at {phase} {step.number} ({key.place}, iteration {key.iteration}, rank "
            f"{key.rank}); iterations on disk: {', '.join(map(str, kept)) or 'none'}; {len(session.hits)} hits so far")


@command("diagnose", "diagnose", "Map the hits so far to the accuracy guide's causes, with what to try next.")
def diagnose_(session: Session, args: list[str]) -> str:
    if args:
        raise UsageError("diagnose takes no arguments", arg=0)
    return "\n".join(format_findings(*session.diagnosis()))
