"""``msdbg run --listen`` and ``msdbg.enable()``: train at full speed with an agent waiting for ``msdbg attach``."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

from msdbg.control import RunControl
from msdbg.frontends.batch import apply_commands, finish
from msdbg.frontends.capture_run import RunOptions, run_under_capture
from msdbg.remote.agent import Agent, announce
from msdbg.session import Session


def _on_steps(session: Session, control: RunControl, agent: Agent):
    def on_steps(results: list) -> None:
        control.steps_done(session.count_training_steps(results))
        agent.at_boundary([hit for _, result in results for hit in result.hits])

    return on_steps


def run_listening(options: RunOptions, listen: str | None) -> int:
    """Run the script with capture on and an agent listening; report like --batch at the end."""
    options.interactive = True  # a client may print any tensor, op inputs included
    control = RunControl(state="running", remote=True)
    session = Session(control=control)
    apply_commands(session, options.commands)
    agent = Agent(session, control, listen, options.script)

    def after_training(code: int) -> None:
        control.state = "ended"
        agent.finish(code)

    code = run_under_capture(options, session, _on_steps(session, control, agent),
                             lambda: announce(agent.start()), after_training)
    return finish(session, options.json_out, code)


_enabled: dict[str, object] = {}


def enable(listen: str | None = None, keep_steps: int = 2) -> str:
    """Capture this process's training and wait for ``msdbg attach``; call once, before the first training step
    (MindSpore reads the dump configuration when the first graph compiles). Returns how to attach."""
    if "agent" in _enabled:
        return str(_enabled["how"])
    from msdbg.capture import barrier, retention
    from msdbg.capture.dumpconfig import ENV_VAR, dump_config, install_dump_config
    from msdbg.store.dumpdir import DumpDir

    control = RunControl(state="running", remote=True)
    session = Session(control=control)
    from msdbg.capture.dumppath import private_dump_dir

    dump_root, config_dir = private_dump_dir(), tempfile.mkdtemp(prefix="msdbg-config-")
    if ENV_VAR in os.environ:
        session.notes.append(f"{ENV_VAR} was already set; msdbg replaced it to capture into {dump_root}")
    install_dump_config(dump_config(dump_root), config_dir)
    session.dump = DumpDir(dump_root)
    agent = Agent(session, control, listen, os.path.abspath(os.sys.argv[0]) if os.sys.argv else "python")
    on_steps = _on_steps(session, control, agent)

    def at_barrier() -> None:
        on_steps(session.evaluate_new_steps())
        retention.prune(session.dump, session.done, keep_steps)

    uninstall = barrier.install(at_barrier)

    def at_exit() -> None:
        uninstall()
        control.state = "ended"
        agent.finish(0)
        shutil.rmtree(dump_root, ignore_errors=True)
        shutil.rmtree(config_dir, ignore_errors=True)

    atexit.register(at_exit)
    how = agent.start()
    announce(how)
    _enabled.update(agent=agent, how=how)
    return how
