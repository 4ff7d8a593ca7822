"""``msdbg run --listen`` and ``msdbg.enable()``: train at full speed with an agent waiting for ``msdbg attach``."""

from __future__ import annotations

import atexit
import os
import shutil
import sys

from msdbg.capture.fastdump import sweep_leftovers
from msdbg.control import RunControl
from msdbg.errors import MsdbgError
from msdbg.frontends.batch import apply_commands, check_output_path, finish
from msdbg.frontends.capture_run import RunOptions, launcher_rank, run_under_capture
from msdbg.frontends.interrupts import take_interrupt
from msdbg.leftovers import on_termination, private_dir
from msdbg.remote.agent import Agent, announce
from msdbg.session import Session


def _on_steps(session: Session, control: RunControl, agent: Agent):
    def on_steps(results: list) -> None:
        if take_interrupt():  # only under 'run --listen', which blocks SIGINT: Ctrl-C in the training's terminal
            if agent.client is None:  # as Python's own Ctrl-C would, but at a step boundary (the script may catch it)
                print("msdbg: Ctrl-C at a step boundary, no client attached", file=sys.stderr, flush=True)
                raise KeyboardInterrupt
            control.pause_requested = True
        control.steps_done(session.count_training_steps(results))
        agent.at_boundary([hit for _, result in results for hit in result.hits])

    return on_steps


def run_listening(options: RunOptions, listen: str | None) -> int:
    """Run the script with capture on and an agent listening; report like --batch at the end."""
    options.interactive = True  # a client may print any tensor, op inputs included
    control = RunControl(state="running", remote=True)
    session = Session(control=control)
    apply_commands(session, options.commands)
    check_output_path(options.json_out, launcher_rank())
    agent = Agent(session, control, listen, options.script)

    def after_training(code: int) -> None:
        control.state = "ended"
        agent.finish(code)

    try:
        code = run_under_capture(options, session, _on_steps(session, control, agent),
                                 lambda: announce(agent.start()), after_training)
    finally:
        agent.stop()
    return finish(session, options.json_out, code)


_enabled: dict[str, object] = {}


def enable(listen: str | None = None, keep_steps: int = 2) -> str:
    """Capture this process's training and wait for ``msdbg attach``; call once, before the first training step
    (MindSpore reads the dump configuration when the first graph compiles). Returns how to attach."""
    if "agent" in _enabled:
        return str(_enabled["how"])
    from msdbg.capture import barrier, retention
    from msdbg.capture.dumpconfig import ENV_VAR, dump_config, install_dump_config
    from msdbg.capture.dumppath import private_dump_dir
    from msdbg.store.dumpdir import DumpDir

    control = RunControl(state="running", remote=True)
    session = Session(control=control)
    try:
        agent = Agent(session, control, listen, os.path.abspath(sys.argv[0]) if sys.argv else "python")
        how = agent.start()
    except MsdbgError as exc:  # the training goes on without an agent
        print(f"msdbg: not listening: {exc}", file=sys.stderr, flush=True)
        return ""
    sweep_leftovers()
    dump_root, config_dir = private_dump_dir(), private_dir("config")
    if ENV_VAR in os.environ:
        session.notes.append(f"{ENV_VAR} was already set; msdbg replaced it to capture into {dump_root}")
    install_dump_config(dump_config(dump_root), config_dir)
    session.dump = DumpDir(dump_root)
    on_steps = _on_steps(session, control, agent)

    def remove_temporary() -> None:
        shutil.rmtree(dump_root, ignore_errors=True)
        shutil.rmtree(config_dir, ignore_errors=True)

    def at_barrier() -> None:
        try:
            on_steps(session.evaluate_new_steps())
            retention.prune(session.dump, session.done, keep_steps)
        except Exception as exc:  # a bug in msdbg must not end the training it was enabled in
            print(f"msdbg: internal error at a step boundary (training goes on): {type(exc).__name__}: {exc}",
                  file=sys.stderr)

    uninstall = barrier.install(at_barrier)

    forget = on_termination(remove_temporary)

    def at_exit() -> None:
        uninstall()
        control.state = "ended"
        agent.finish(0)
        remove_temporary()
        forget()

    atexit.register(at_exit)
    announce(how)
    _enabled.update(agent=agent, how=how)
    return how
