"""Interactive run: ``msdbg run SCRIPT`` pauses before the first step and at hits, and opens the prompt."""

from __future__ import annotations

import os
import sys
from typing import Callable, Protocol

from msdbg.commands import lookup, run_line, split_line
from msdbg.commands.display import render_displays
from msdbg.control import RunControl, StopTraining
from msdbg.errors import MsdbgError
from msdbg.frontends.batch import apply_commands
from msdbg.frontends.capture_run import RunOptions, run_under_capture
from msdbg.frontends.interrupts import discard_typeahead, take_interrupt
from msdbg.threads import block_interrupts
from msdbg.frontends.report import summary
from msdbg.repl.pager import show
from msdbg.session import Session

_REPEATABLE = {"step", "continue"}


class Reader(Protocol):
    def read(self) -> str | None: ...


def use_color() -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set."""
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def interact(session: Session, reader: Reader) -> None:
    """Read and run commands until one resumes the training (continue, step, quit) or input ends."""
    control = session.control
    control.resume = None
    while control.resume is None:
        line = reader.read()
        if line is None:
            control.request("quit")
            break
        if not line.strip():
            if not control.repeatable:
                continue
            line = control.repeatable
        try:
            words = split_line(line)
            if words and lookup(words[0]).name in _REPEATABLE:
                control.repeatable = line
            output = run_line(session, line)
        except MsdbgError as exc:
            output = f"*** {exc}"
        if output:
            show(output)


def run_interactive(options: RunOptions, make_reader: Callable[[Session], Reader] | None = None) -> int:
    """Run the script under the debugger with a prompt; return the script's exit code.

    ``make_reader`` builds the command source for the session (default: a prompt on a terminal, else stdin lines).
    """
    if make_reader is None:
        from msdbg.repl.app import make_reader

    options.interactive = True
    control = RunControl()
    session = Session(control=control, color=use_color())
    apply_commands(session, options.commands)
    reader = make_reader(session)

    def before_training() -> None:
        print(f"msdbg: {options.script} is loaded; training has not started. Set watchpoints, then 'continue' "
              "or 'step'. 'help' lists commands.", flush=True)
        if control.resume is None:  # a -x/-c/.msdbgrc command may already have said continue or step
            interact(session, reader)
        if control.resume == "quit":
            raise StopTraining
        control.state = "running"

    ctrl_c = [False]  # a Ctrl-C taken at a boundary that had no step to pause after is still owed its pause

    def on_steps(results: list) -> None:
        if take_interrupt():
            control.pause_requested = ctrl_c[0] = True
        hits = [hit for _, result in results for hit in result.hits]
        control.steps_done(session.count_training_steps(results))
        for _, result in results:
            for error in result.errors:
                print(f"msdbg: error: {error}", file=sys.stderr)
        if control.state == "ended" or not results or not control.should_pause(bool(hits)):
            return
        if hits:
            session.current = hits[0].entry.step
            print("msdbg: watchpoint hit\n" + "\n".join(summary(hits)), flush=True)
        else:
            reason = " (Ctrl-C)" if ctrl_c[0] else ""
            step = session.user_step(session.current)
            phase = "step" if step.phase == "train" else "eval step"
            print(f"msdbg: paused after {phase} {step.number} ({session.current.place}){reason}",
                  flush=True)
        control.pause_requested = ctrl_c[0] = False
        control.state = "paused"
        discard_typeahead()
        if session.displays:
            show(render_displays(session))
        interact(session, reader)
        take_interrupt()  # a Ctrl-C pressed while paused (e.g. during a long command) does not pause again
        if control.resume == "quit":
            raise StopTraining
        control.state = "running"

    def after_training(code: int) -> None:
        control.exit_code = code
        control.state = "ended"
        if session.coverage.uncaptured:
            print(f"msdbg: warning: {session.coverage.message()}", flush=True)
        if control.resume != "quit":
            print(f"msdbg: training finished (exit code {code}), {len(session.hits)} hits; inspect, or 'quit'",
                  flush=True)
            interact(session, reader)

    block_interrupts()  # cli.main blocked SIGINT before any import; this covers a direct call
    try:
        return run_under_capture(options, session, on_steps, before_training, after_training)
    except StopTraining:
        return control.exit_code or 0
    finally:
        take_interrupt()
