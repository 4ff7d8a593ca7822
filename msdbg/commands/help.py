"""help: generated from the registry (commands) and the condition table (conditions, their parameters)."""

from __future__ import annotations

from msdbg.commands import tensor_names
from msdbg.commands.registry import COMMANDS, command, lookup
from msdbg.engine.conditions import CONDITIONS, Condition
from msdbg.errors import UsageError
from msdbg.repl.layout import hanging, terminal_width, wrap
from msdbg.session import Session
from msdbg.suggest import unknown

_TOPICS = ("conditions", "names")


@command("help", "help [COMMAND | conditions | CONDITION | names]",
         "List commands, or show a command's usage, the watchpoint conditions, one condition's parameters and "
         "defaults, or how tensors are named.")
def help_(session: Session, args: list[str]) -> str:
    width = terminal_width()
    if len(args) > 1:
        raise UsageError("usage: help [COMMAND | conditions | CONDITION | names]", arg=1)
    if not args:
        return _hanging([(name, COMMANDS[name].summary) for name in sorted(COMMANDS)], width)
    topic = args[0]
    if topic == "conditions":
        return "Conditions ('help CONDITION' for its parameters):\n" + _hanging(
            [(c.name, c.description + ("" if c.available else " (not available here)"))
             for c in sorted(CONDITIONS.values(), key=lambda c: c.name)], width)
    if topic == "names":
        return wrap(tensor_names.__doc__.strip(), width, indent="  ")
    if topic in CONDITIONS:
        return wrap(describe_condition(CONDITIONS[topic]), width)
    try:
        entry = lookup(topic)
    except UsageError:
        raise UsageError(unknown("help topic", topic, [*COMMANDS, *CONDITIONS, *_TOPICS]), arg=0) from None
    aliases = f"  (aliases: {', '.join(entry.aliases)})" if entry.aliases else ""
    return wrap(f"{entry.usage}{aliases}\n  {entry.summary}", width)


def describe_condition(condition: Condition) -> str:
    """A condition's description, what it looks at, and each parameter with its default."""
    targets = ", ".join(sorted(condition.targets)) if condition.targets else "any tensor"
    lines = [f"{condition.name}: {condition.description}", f"  looks at: {targets}"]
    if not condition.available:
        lines.append(f"  not available here: {condition.unavailable_reason}")
    if condition.params:
        lines.append("  parameters:")
        for spec in condition.params:
            meaning = f"bound on {spec.statistic} ({spec.compare})" if spec.statistic else "setting"
            default = "no default" if spec.default is None else f"default {spec.default:g}"
            lines.append(f"    {spec.name}: {meaning}, {default}")
        if condition.bounds and condition.kind == "bounds":
            lines.append("  with several bounds the watchpoint hits when any holds; bounds without a default "
                         "are set only when given")
    else:
        lines.append("  parameters: none")
    lines.append(f"  example: watch {condition.name}" + "".join(
        f" {spec.name}={spec.default:g}" for spec in condition.params[:1] if spec.default is not None))
    return "\n".join(lines)


def _hanging(rows: list[tuple[str, str]], width: int) -> str:
    """'name  text' rows with the text wrapped in a column of its own (under each name when names are long)."""
    name_width = max(len(name) for name, _ in rows)
    if name_width + 30 > width:
        return "\n".join(f"{name}\n" + hanging("    ", text, width) for name, text in rows)
    return "\n".join(hanging(f"{name:<{name_width}}  ", text, width) for name, text in rows)
