"""Run a training script under capture: dump config, step barrier, evaluation, retention, clean-up."""

from __future__ import annotations

import os
import shutil
import sys
import traceback
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable

from msdbg.capture.diskfull import DiskGuard
from msdbg.capture.dumpconfig import (DUMP_BOTH, DUMP_OUTPUTS, choose_saved_data, dump_config,
                                      install_dump_config)
from msdbg.capture.dumppath import MindSporePath, private_dump_dir
from msdbg.commands.scripts import CommandSource
from msdbg.engine.evaluate import StepResult
from msdbg.errors import UsageError
from msdbg.leftovers import on_termination, private_dir
from msdbg.numeric import is_ascii_int
from msdbg.session import Session
from msdbg.store.dumpdir import PYNATIVE_NET, DumpDir, StepKey
from msdbg.store.pynative import PyNativeSteps
from msdbg.store.steps import CombinedSource
from msdbg.threads import worker

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
    graph_mode: bool = False  # --graph-mode: run the script in graph mode whatever it asks for
    pynative: bool = True  # record PyNative calls (capture/pynative.py); --no-pynative: graph capture only


def _warn(message: str) -> None:
    print(f"msdbg: warning: {message}", file=sys.stderr, flush=True)


def _note(message: str) -> None:
    print(f"msdbg: note: {message}", file=sys.stderr, flush=True)


class _Overlap:
    """One background evaluation at a time, on a thread that keeps SIGINT blocked (MindSpore's handler would end
    the process from any thread)."""

    def __init__(self):
        self._pool = worker("msdbg-step")
        self._pending: Future | None = None

    def start(self, job: Callable[[list[StepKey]], None], keys: list[StepKey]) -> None:
        self._pending = self._pool.submit(job, keys)

    def wait(self) -> None:
        """Wait for the evaluation under way, if any; re-raise what it raised (StopTraining from on_steps)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()


def launcher_rank() -> int | None:
    """This process's rank when a launcher (msrun, mpirun with MindSpore's env) started it, else None."""
    value = os.environ.get("RANK_ID", "")
    return int(value) if is_ascii_int(value) else None


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


def compares_with_previous(session: Session) -> bool:
    """Whether an active watchpoint judges weights before an update (initial values, change from before)."""
    return any(w.condition.initial or w.condition.needs_previous for w in session.watchpoints.active())


def lock_dump_dir(path: str, rank: int | None) -> str:
    """Claim a ``--dump-dir`` for this run (and rank): a second msdbg on it would read this run's files as its own.
    Returns the lock file to remove at the end; a lock left by a process that no longer runs is taken over."""
    lock = os.path.join(path, f".msdbg-lock-rank_{rank or 0}")
    for _ in range(2):
        try:
            descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _lock_owner(lock)
            if owner is not None:
                raise UsageError(f"--dump-dir {path}: in use by another msdbg run (PID {owner}); use another "
                                 "directory") from None
            try:
                os.unlink(lock)  # stale: its process is gone
            except FileNotFoundError:
                pass
            continue
        except OSError as exc:
            raise UsageError(f"--dump-dir {path}: cannot be written ({exc.strerror})") from None
        with os.fdopen(descriptor, "w") as handle:
            handle.write(str(os.getpid()))
        return lock
    raise UsageError(f"--dump-dir {path}: another msdbg run is starting on it; use another directory")


def _lock_owner(lock: str) -> int | None:
    """The PID holding a lock file, when that process still runs."""
    try:
        with open(lock, encoding="ascii", errors="replace") as handle:
            text = handle.read(32).strip()
    except OSError:
        return None
    if not is_ascii_int(text):
        return None
    try:
        os.kill(int(text), 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # another user's live process
        pass
    return int(text)


def outputs_suffice(session: Session, config_dir: str) -> bool:
    """Whether a dump of op outputs only serves the active watchpoints. Those that judge weights before an update
    (initial values, change from the previous step) need, at the first step, the parameters' initial values: then
    only once they are saved (capture/initial.py; not when they exceed its size limit). Later steps compare with
    the engine's copy of the previous step."""
    from msdbg.capture.initial import snapshot_parameters

    if not compares_with_previous(session):
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
                      after_training: Callable[[int], None] | None = None, overlap_steps: bool = False) -> int:
    """Run the script with capture on; call ``on_steps`` with each barrier's evaluated steps; return its exit code.

    ``on_steps`` runs inside the training process at a step boundary; it may block (a paused prompt) or raise
    StopTraining. Any other failure inside msdbg is reported and training goes on. ``after_training`` runs
    once the script has ended, while the dump is still on disk.

    ``overlap_steps`` (batch mode, where no prompt can open): step N is evaluated, reported and pruned on a
    worker thread while step N+1 trains; the barrier after N+1 waits for it first, so hits are still reported
    with step N and at most one step is evaluated behind the training.
    """
    from msdbg.capture import barrier, coverage, graph_mode, pynative, retention
    from msdbg.capture.fastdump import place_on_fast_storage, sweep_leftovers
    from msdbg.capture.runner import run_script

    if not os.path.isfile(options.script):
        raise UsageError(f"training script {options.script}: no such file")
    rank = launcher_rank()
    if options.record:
        start_recording(session, options.record.replace("{rank}", str(rank or 0)), options.script,
                        [options.script, *options.script_args])
    sweep_leftovers()
    dump_root, owned = prepare_dump_dir(options.dump_dir, rank)
    lock = None if owned else lock_dump_dir(dump_root, rank)
    fast = config_dir = for_mindspore = None
    script_code = None

    def remove_temporary() -> None:
        if for_mindspore is not None:
            for_mindspore.remove()
        if config_dir is not None:
            shutil.rmtree(config_dir, ignore_errors=True)
        if fast is not None:
            fast.remove()
        if owned:
            shutil.rmtree(dump_root, ignore_errors=True)
        if lock is not None:
            try:
                os.unlink(lock)
            except OSError:
                pass

    forget = on_termination(remove_temporary)
    try:
        for_mindspore = MindSporePath(dump_root)
        fast = place_on_fast_storage(dump_root, rank or 0) if owned else None
        config_dir = private_dir("config")
        install_dump_config(dump_config(for_mindspore.path), config_dir)
        dump = DumpDir(dump_root)
        pynative_steps = PyNativeSteps(options.keep_steps, rank or 0)
        session.dump = CombinedSource(dump, pynative_steps)
        session.rank = rank
        recorder = None

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

        trash = retention.Trash()
        disk = DiskGuard(dump.rank_dir(rank or 0))

        def skip_unchecked_steps() -> None:
            """The disk is full: drop the steps not checked yet, say so once (see capture/diskfull.py)."""
            skipped = [k for k in dump.steps() if k not in session.done and (rank is None or k.rank == rank)]
            session.done.update(skipped)
            message = disk.drop([(k.iteration, dump.step_dir(k)) for k in skipped])
            if message:
                session.errors.append(message)  # the batch report prints it once, at the end
                if options.interactive:
                    print(f"msdbg: error: {message}", file=sys.stderr, flush=True)

        def evaluate(keys: list[StepKey]) -> None:
            """Delete the folders pruned at the barrier; evaluate and report these complete steps."""
            trash.empty()
            try:
                results = session.evaluate_keys(keys)
            except Exception:  # a bug in msdbg must not end the training
                print("msdbg: internal error while evaluating a step (training goes on):\n"
                      + traceback.format_exc(), file=sys.stderr)
                return
            try:
                on_steps(results)
            except Exception:  # StopTraining ('quit') is no Exception and ends the script as asked
                print("msdbg: internal error at a step boundary (training goes on):\n"
                      + traceback.format_exc(), file=sys.stderr)

        def housekeeping(listed: list[StepKey]) -> None:
            """At the barrier, the training stopped: prune the evaluated steps, move the dump off memory if due;
            ``listed``: the dump's steps, listed once at this barrier."""
            try:
                removed = set(retention.prune(dump, session.done, options.keep_steps, rank,
                                              remove=trash.put if overlap is not None else None, listed=listed))
                kept = [key for key in listed if key not in removed]
                if fast is not None and (message := fast.keep_room(dump, options.keep_steps, kept)):
                    print(f"msdbg: {message}", file=sys.stderr)
            except Exception:  # housekeeping must not end the training either
                print("msdbg: internal error while pruning the dump (training goes on):\n"
                      + traceback.format_exc(), file=sys.stderr)

        overlap = _Overlap() if overlap_steps else None

        def at_barrier() -> None:
            if overlap is not None:
                overlap.wait()  # the previous step's evaluation; re-raises what on_steps raised there
            try:  # the dump listed once a barrier, shared by pruning, the fast dump's room check and the new steps
                listed = dump.steps()
                keys = session.new_steps([*listed, *pynative_steps.steps()])  # complete now: the dump was waited for
            except Exception:  # a bug in msdbg must not end the training
                print("msdbg: internal error while listing the dump (training goes on):\n"
                      + traceback.format_exc(), file=sys.stderr)
                return
            if overlap is not None:
                housekeeping(listed)
            if recorder is not None and recorder.busy:  # a graph run inside a recorded PyNative call (the
                session.skip_new_steps(dump)           # optimizer's own jit): that step is recorded as a whole
                if overlap is None:
                    housekeeping(listed)
                return
            if disk.full():
                skip_unchecked_steps()
                if overlap is None:
                    housekeeping(dump.steps())  # the unchecked folders were removed
                return
            if overlap is not None and not any(key.net == PYNATIVE_NET for key in keys):
                overlap.start(evaluate, keys)
            else:  # PyNative steps are tensors in memory that the next step may update in place: evaluate now
                evaluate(keys)
                housekeeping(listed)

        if before_training is not None:
            before_training()
        uninstalls = [barrier.install(at_barrier, before_first_compile),
                      coverage.install(session.coverage, barrier.in_graph_call, _warn)]
        if options.graph_mode:
            uninstalls.append(graph_mode.force_graph_mode(_note))
        elif options.pynative:
            try:
                recorder = pynative.PyNativeRecorder(pynative_steps, at_barrier, lambda: compares_with_previous(session))
                uninstalls.append(pynative.install(recorder))
                session.coverage.recorded_natively = True
            except Exception as exc:  # e.g. a MindSpore version without these entry points: count, do not check
                recorder = None
                _warn(f"PyNative calls cannot be recorded with this MindSpore ({exc!r}); graph capture only")
        try:
            script_code = run_script(options.script, options.script_args)
            if recorder is not None:
                recorder.close_step()  # the last step of a hand-written update ends with the script
        finally:
            for uninstall in reversed(uninstalls):
                uninstall()
            if overlap is not None:
                overlap.wait()
                trash.empty()
        on_steps(session.evaluate_new_steps())
        if after_training is not None:
            after_training(script_code)
        return script_code
    finally:
        stop_recording(session, script_code)
        remove_temporary()
        forget()
