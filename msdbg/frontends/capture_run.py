"""Run a training script under capture: dump config, step barrier, evaluation, retention, clean-up."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from typing import Callable

from msdbg.capture.dumpconfig import (DUMP_BOTH, DUMP_OUTPUTS, choose_saved_data, dump_config,
                                      install_dump_config)
from msdbg.capture.dumppath import MindSporePath, private_dump_dir
from msdbg.commands.scripts import CommandSource
from msdbg.engine.evaluate import StepResult
from msdbg.errors import UsageError
from msdbg.session import Session
from msdbg.store.dumpdir import DumpDir, StepKey

StepsCallback = Callable[[list[tuple[StepKey, StepResult]]], None]


@dataclass
class RunOptions:
    script: str
    script_args: list[str]
    commands: list[CommandSource] = field(default_factory=list)
    json_out: str | None = None
    dump_dir: str | None = None
    keep_steps: int = 2
    interactive: bool = False
    record: str | None = None  # the flight recording to write (None: none)


def launcher_rank() -> int | None:
    """This process's rank when a launcher (msrun, mpirun with MindSpore's env) started it, else None."""
    value = os.environ.get("RANK_ID", "")
    return int(value) if value.isdigit() else None


def prepare_dump_dir(requested: str | None, rank: int | None = None) -> tuple[str, bool]:
    """The dump directory to use and whether msdbg owns it (and removes it at exit).

    Under a launcher every rank shares one ``--dump-dir``: the other ranks' folders are expected there, only this
    rank's own ``rank_N`` must not exist yet.
    """
    if requested is None:
        return private_dump_dir(), True
    path = os.path.abspath(requested)
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise UsageError(f"--dump-dir {requested}: parent directory {parent} does not exist")
    taken = [n for n in (os.listdir(path) if os.path.isdir(path) else []) if n.startswith("rank_")]
    if taken and (rank is None or f"rank_{rank}" in taken):
        mine = f"rank_{rank}" if rank is not None else "rank_* folders"
        raise UsageError(f"--dump-dir {requested}: already holds a dump ({mine}); use an empty directory")
    os.makedirs(path, exist_ok=True)
    return path, False


def outputs_suffice(session: Session, config_dir: str) -> bool:
    """Whether a dump of op outputs only serves the active watchpoints. Those that judge weights before an update
    (initial values, change from the previous step) need, at the first step, the parameters' initial values: then
    only once they are saved (capture/initial.py; not when they exceed its size limit). Later steps compare with
    the engine's copy of the previous step."""
    from msdbg.capture.initial import snapshot_parameters

    if not any(w.condition.initial or w.condition.needs_previous for w in session.watchpoints.active()):
        return True
    paths = snapshot_parameters(os.path.join(config_dir, "initial"))
    if paths is None:
        return False
    session.history.initial_values = paths
    return True


def start_recording(session: Session, path: str, source: str, argv: list[str]) -> None:
    """Give the session a flight recorder writing ``path``."""
    from msdbg.store.recorder import Recorder

    session.recorder = Recorder(path, source=source, argv=argv)
    session.record_path = path


def stop_recording(session: Session, exit_code: int | None) -> None:
    """Close the flight recording (noting the exit code); a failure is reported, never raised."""
    if session.recorder is None:
        return
    try:
        session.recorder.finish(exit_code)
    except Exception as exc:  # noqa: BLE001  closing must not hide the run's own outcome
        print(f"msdbg: flight recorder {session.recorder.path}: {exc}", file=sys.stderr)
    session.recorder = None


def run_under_capture(options: RunOptions, session: Session, on_steps: StepsCallback,
                      before_training: Callable[[], None] | None = None,
                      after_training: Callable[[int], None] | None = None) -> int:
    """Run the script with capture on; call ``on_steps`` with each barrier's evaluated steps; return its exit code.

    ``on_steps`` runs inside the training process at a step boundary; it may block (a paused prompt) or raise
    StopTraining. Any other failure inside msdbg is reported and training goes on. ``after_training`` runs
    once the script has ended, while the dump is still on disk.
    """
    from msdbg.capture import barrier, retention
    from msdbg.capture.fastdump import place_on_fast_storage
    from msdbg.capture.runner import run_script

    if not os.path.isfile(options.script):
        raise UsageError(f"training script {options.script}: no such file")
    rank = launcher_rank()
    if options.record:
        start_recording(session, options.record.replace("{rank}", str(rank or 0)), options.script,
                        [options.script, *options.script_args])
    dump_root, owned = prepare_dump_dir(options.dump_dir, rank)
    fast = config_dir = for_mindspore = None
    script_code = None
    try:
        for_mindspore = MindSporePath(dump_root)
        fast = place_on_fast_storage(dump_root, rank or 0) if owned else None
        config_dir = tempfile.mkdtemp(prefix="msdbg-config-")
        install_dump_config(dump_config(for_mindspore.path), config_dir)
        session.dump = DumpDir(dump_root)
        session.rank = rank

        def before_first_compile() -> None:
            """MindSpore reads the dump config at the first compile, when the device target is known."""
            import mindspore as ms

            saved_data = choose_saved_data(ms.get_context("device_target"), session.watchpoints.active(),
                                           options.interactive)
            input_output = DUMP_BOTH
            try:
                if owned and not options.interactive and outputs_suffice(session, config_dir):
                    input_output = DUMP_OUTPUTS
            except Exception:  # e.g. a parameter that cannot be copied: dump both sides, as without the choice
                print("msdbg: could not save the initial parameter values; dumping op inputs too:\n"
                      + traceback.format_exc(limit=3), file=sys.stderr)
            install_dump_config(dump_config(for_mindspore.path, saved_data=saved_data, input_output=input_output),
                                config_dir)

        def at_barrier() -> None:
            try:
                results = session.evaluate_new_steps()
            except Exception:  # a bug in msdbg must not end the training
                print("msdbg: internal error while evaluating a step (training goes on):\n"
                      + traceback.format_exc(), file=sys.stderr)
                return
            on_steps(results)
            try:
                retention.prune(session.dump, session.done, options.keep_steps, rank)
                if fast is not None and (message := fast.keep_room(session.dump, options.keep_steps)):
                    print(f"msdbg: {message}", file=sys.stderr)
            except Exception:  # housekeeping must not end the training either
                print("msdbg: internal error while pruning the dump (training goes on):\n"
                      + traceback.format_exc(), file=sys.stderr)

        if before_training is not None:
            before_training()
        uninstall = barrier.install(at_barrier, before_first_compile)
        try:
            script_code = run_script(options.script, options.script_args)
        finally:
            uninstall()
        on_steps(session.evaluate_new_steps())
        if after_training is not None:
            after_training(script_code)
        return script_code
    finally:
        stop_recording(session, script_code)
        if for_mindspore is not None:
            for_mindspore.remove()
        if config_dir is not None:
            shutil.rmtree(config_dir, ignore_errors=True)
        if fast is not None:
            fast.remove()
        if owned:
            shutil.rmtree(dump_root, ignore_errors=True)
