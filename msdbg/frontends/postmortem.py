"""``msdbg open``: the prompt (or a batch report) on a finished run's flight recording."""

from __future__ import annotations

from msdbg.commands.scripts import CommandSource, run_commands
from msdbg.control import RunControl
from msdbg.engine.conditions import CONDITIONS
from msdbg.engine.watchpoints import TargetPattern, Watchpoint
from msdbg.session import Session
from msdbg.store.recorder import newest_recording
from msdbg.store.recording import Recording


def open_session(path: str | None) -> Session:
    """A session on a recording (default: the newest): its watchpoints, hits and steps, at its last step."""
    recording = Recording(path or newest_recording())
    session = Session(dump=recording, control=RunControl(state="ended"))
    for number, name, params, target, enabled in recording.watchpoints():
        if name in CONDITIONS:
            session.watchpoints.items[number] = Watchpoint(number, CONDITIONS[name], params,
                                                           TargetPattern.parse(target) if target else None, enabled)
    session.watchpoints._next = max(session.watchpoints.items, default=0) + 1
    session.hits = recording.hits()
    steps = recording.steps()
    session.done = set(steps)
    session.tensors_checked = recording.tensors_checked()
    training = [key for key in steps if session.is_training_step(key)]
    session.current = (training or steps or [None])[-1]
    return session


def open_recording(path: str | None, commands: list[CommandSource], batch: bool, json_out: str | None) -> int:
    """Run the commands on the recording, then the prompt (or, with ``batch``, the report: exit 0/1/2)."""
    from msdbg.frontends.batch import finish
    from msdbg.frontends.live import interact, use_color
    from msdbg.repl.pager import show

    session = open_session(path)
    recording = session.dump
    meta = recording.meta()
    session.color = not batch and use_color()
    show(f"msdbg: recording {recording.path}: {meta.get('source', '?')}, {len(session.done)} steps, "
         f"{len(session.hits)} hits, started {meta.get('started', '?')}"
         + ("" if batch else "; 'help' lists commands, 'quit' leaves"))
    for output in run_commands(session, commands):
        show(output)
    if batch:
        return finish(session, json_out)
    from msdbg.repl.app import make_reader

    interact(session, make_reader(session))
    return 0
