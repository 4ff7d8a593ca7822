"""Stepping commands: continue, step, quit (they leave the prompt; the training resumes)."""

from __future__ import annotations

from msdbg.commands.registry import command
from msdbg.control import RunControl
from msdbg.errors import UsageError
from msdbg.numeric import POSITIVE_COUNT, parse_int
from msdbg.session import Session


def _control(session: Session, verb: str) -> RunControl:
    control = session.control
    if control is None:
        raise UsageError(f"'{verb}' needs a live training (msdbg run); this session reads a finished dump")
    if control.state == "ended":
        raise UsageError("training has ended; inspect its last steps, or 'quit'")
    return control


def _count(args: list[str], verb: str, default: int | None) -> int | None:
    if not args:
        return default
    if len(args) != 1:
        raise UsageError(f"usage: {verb} [N] with N a positive whole number", arg=1 if len(args) > 1 else None)
    return parse_int(args[0], f"{verb} N", POSITIVE_COUNT, arg=0)


@command("continue", "continue [N]", "Run until a watchpoint hits, the training ends, or N more steps ran.",
         aliases=("c", "cont"))
def continue_(session: Session, args: list[str]) -> str:
    _control(session, "continue").request("continue", _count(args, "continue", None))
    return ""


@command("step", "step [N]", "Run N training steps (default 1), then pause (earlier if a watchpoint hits).",
         aliases=("s", "next", "n"))
def step(session: Session, args: list[str]) -> str:
    _control(session, "step").request("step", _count(args, "step", 1))
    return ""


@command("quit", "quit", "Leave msdbg; a training still running is stopped at this step boundary.",
         aliases=("q", "exit"))
def quit_(session: Session, args: list[str]) -> str:
    if session.control is None:
        raise UsageError("'quit' only means something at the prompt")
    session.control.request("quit")
    return ""


@command("pause", "pause", "Attached to a running training: pause it at the next step boundary.")
def pause(session: Session, args: list[str]) -> str:
    control = _control(session, "pause")
    if control.state == "paused":
        return "Already paused."
    control.pause_requested = True
    return "Pausing at the next step boundary."


@command("detach", "detach", "Leave an attached training: it goes on; watchpoints stay active and their hits are "
         "remembered for the next attach.")
def detach(session: Session, args: list[str]) -> str:
    if session.control is None or not session.control.remote:
        raise UsageError("'detach' is for a session opened with msdbg attach")
    session.control.request("detach")
    return "Detached; training goes on, watchpoints stay active and hits are kept for the next attach."
