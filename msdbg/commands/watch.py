"""Watchpoint commands: watch, delete, enable, disable, info."""

from __future__ import annotations

from msdbg.commands.registry import command
from msdbg.engine.diagnose import format_findings
from msdbg.engine.recommended import RECOMMENDED
from msdbg.errors import UsageError
from msdbg.frontends.report import format_hit
from msdbg.session import Session


@command("watch", "watch CONDITION [PARAM=VALUE ...] [on PATTERN] | watch recommended",
         "Create a watchpoint; PATTERN is a glob over node, parameter and scope names (re:REGEX for a regex). "
         "'watch recommended' creates a default set.")
def watch(session: Session, args: list[str]) -> str:
    if not args:
        raise UsageError("watch needs a condition, e.g. 'watch tensor_overflow'")
    if args == ["recommended"]:
        created = [session.watchpoints.add(name, dict(params), target) for name, params, target in RECOMMENDED]
        return "\n".join(f"Watchpoint {w.describe()}" for w in created)
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
    return f"Watchpoint {watchpoint.describe()}"


def _number(args: list[str], verb: str) -> int:
    if len(args) != 1 or not args[0].isdigit():
        raise UsageError(f"usage: {verb} N (a watchpoint number, see 'info watchpoints')", arg=0 if args else None)
    return int(args[0])


@command("delete", "delete N", "Delete watchpoint N.")
def delete(session: Session, args: list[str]) -> str:
    number = _number(args, "delete")
    session.watchpoints.get(number)
    del session.watchpoints.items[number]
    return f"Deleted watchpoint {number}"


@command("enable", "enable N", "Enable watchpoint N.")
def enable(session: Session, args: list[str]) -> str:
    session.watchpoints.get(_number(args, "enable")).enabled = True
    return f"Enabled watchpoint {args[0]}"


@command("disable", "disable N", "Disable watchpoint N (kept, not evaluated).")
def disable(session: Session, args: list[str]) -> str:
    session.watchpoints.get(_number(args, "disable")).enabled = False
    return f"Disabled watchpoint {args[0]}"


@command("info", "info watchpoints | info hits | info step | info ranks",
         "Show watchpoints, hits so far, where training is, or the ranks of the dump.")
def info(session: Session, args: list[str]) -> str:
    what = args[0] if len(args) == 1 else ""
    if what and "step".startswith(what):
        return _step_info(session)
    if what and "ranks".startswith(what):
        return _ranks_info(session)
    if "watchpoints".startswith(what) and what:
        items = session.watchpoints.items.values()
        return "\n".join(w.describe() for w in items) if items else "No watchpoints."
    if "hits".startswith(what) and what:
        if not session.hits:
            return "No hits."
        return "\n".join(f"#{i} " + format_hit(h) for i, h in enumerate(session.hits, start=1))
    raise UsageError("usage: info watchpoints | info hits | info step | info ranks", arg=0 if args else None)


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
    if len(args) != 1 or not args[0].isdigit():
        raise UsageError("usage: rank N", arg=0 if args else None)
    wanted = int(args[0])
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
    return f"Rank {wanted}: step {session.current.iteration} of graph {session.current.graph}"


def _step_info(session: Session) -> str:
    state = session.control.state if session.control else "offline"
    key = session.current
    if key is None:
        return f"Training {state}; no step has run yet."
    step = session.user_step(key)
    phase = "step" if step.phase == "train" else "eval step"
    kept = [k.iteration for k in session.retained_steps(key)]
    return (f"Training {state}; at {phase} {step.number} (graph {key.graph}, iteration {key.iteration}, rank "
            f"{key.rank}); iterations on disk: {', '.join(map(str, kept)) or 'none'}; {len(session.hits)} hits so far")


@command("diagnose", "diagnose", "Map the hits so far to the accuracy guide's causes, with what to try next.")
def diagnose_(session: Session, args: list[str]) -> str:
    if args:
        raise UsageError("diagnose takes no arguments", arg=0)
    return "\n".join(format_findings(*session.diagnosis()))
