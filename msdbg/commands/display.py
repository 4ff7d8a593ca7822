"""display / undisplay: expressions or tensors shown at every pause, as gdb's display."""

from __future__ import annotations

from msdbg.commands.registry import command, run_line
from msdbg.errors import MsdbgError, UsageError
from msdbg.numeric import is_ascii_int
from msdbg.session import Session


def _command_for(item: str) -> str:
    """A NumPy expression (tensors in backticks) is evaluated; anything else is a tensor to print."""
    return f"eval {item}" if "`" in item else f"print {item}"


def render_displays(session: Session) -> str:
    """Every display, numbered, as it evaluates now ('' when there is none); an error is shown, not raised."""
    shown = []
    for number, item in session.displays.items():
        try:
            value = run_line(session, _command_for(item))
        except MsdbgError as exc:
            value = f"*** {exc}"
        shown.append(f"{number}: {item}\n{value}")
    return "\n".join(shown)


@command("display", "display [EXPR|TENSOR]",
         "Show TENSOR (or a NumPy EXPR with tensors in backticks) now and at every pause; no argument: show all.")
def display(session: Session, args: list[str]) -> str:
    if not args:
        return render_displays(session) or "No displays."
    item = " ".join(args)
    session.displays[session.next_display] = item
    session.next_display += 1
    try:
        now = run_line(session, _command_for(item))
    except MsdbgError as exc:  # kept: the tensor may exist at a later step
        now = f"(not shown now: {exc})"
    return f"{session.next_display - 1}: {item}\n{now}"


@command("undisplay", "undisplay [N ...]", "Stop showing display N (no argument: all).")
def undisplay(session: Session, args: list[str]) -> str:
    if not args:
        count = len(session.displays)
        session.displays.clear()
        return f"Removed {count} display{'s' if count != 1 else ''}."
    for index, word in enumerate(args):
        if not is_ascii_int(word) or int(word) not in session.displays:
            known = ", ".join(map(str, session.displays)) or "none"
            raise UsageError(f"no display {word}; existing: {known}", arg=index)
    numbers = list(dict.fromkeys(int(word) for word in args))  # 'undisplay 2 2' removes display 2 once
    for number in numbers:
        del session.displays[number]
    return f"Removed display {', '.join(map(str, numbers))}."
