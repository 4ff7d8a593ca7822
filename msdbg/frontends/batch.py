"""Batch front end: ``msdbg run --batch`` and ``msdbg check``; prints hits, writes JSON, returns the exit code."""

from __future__ import annotations

import json
import os
import sys
from typing import Iterable, Iterator

from msdbg.commands.scripts import CommandSource, run_commands
from msdbg.engine.diagnose import format_findings
from msdbg.errors import UsageError
from msdbg.frontends.capture_run import RunOptions, launcher_rank, run_under_capture, start_recording, stop_recording
from msdbg.frontends.report import summary
from msdbg.session import Session
from msdbg.store.dumpdir import DumpDir
from msdbg.store.stepspec import parse_step_spec

EXIT_CLEAN, EXIT_HITS, EXIT_BAD_INPUT = 0, 1, 2
PROGRESS_MIN_STEPS = 20


def apply_commands(session: Session, commands: list[CommandSource]) -> None:
    """Run the setup commands (all validated before training); echo their output on stderr."""
    for output in run_commands(session, commands):
        print(output, file=sys.stderr)


def run_batch(options: RunOptions) -> int:
    """Train under capture, evaluate every step at its end, report; exit 0 clean, 1 hits, 2 bad input."""
    session = Session()
    apply_commands(session, options.commands)
    check_output_path(options.json_out, launcher_rank())

    def report_steps(results: list) -> None:
        for key, result in results:
            if result.hits:
                origin = next((h for h in result.hits if h.first_offending), result.hits[0])
                phase = "step" if origin.phase == "train" else "eval step"
                print(f"msdbg: {phase} {origin.step} {key.place}: {len(result.hits)} hits, origin "
                      f"{origin.entry.op_type} {origin.entry.node}", file=sys.stderr)

    script_code = run_under_capture(options, session, report_steps, overlap_steps=True)
    return finish(session, options.json_out, script_code, trained=True)


def finish(session: Session, json_out: str | None, script_code: int = 0, *, offline: bool = False,
           trained: bool = False) -> int:
    """Print the summary, write JSON, and return the exit code (2 errors > 1 hits > the script's code).

    Not clean, one line and exit 2: a check (``offline``), or a run with watchpoints whose script succeeded, that
    evaluated no tensor; a training run (``trained``) that captured no training step.
    """
    if session.coverage.uncaptured:
        session.warnings.append(session.coverage.message())
    unchecked = trained and not session.hits and not session.errors and not session.training_steps_captured()
    if unchecked:
        session.warnings.append(f"{not_captured(session)}; the run is not reported as clean")
    for warning in session.warnings:
        print(f"msdbg: warning: {warning}", file=sys.stderr)
    for note in session.notes:
        print(f"msdbg: note: {note}", file=sys.stderr)
    lines = summary(session.hits)
    print(f"msdbg: {len(session.hits)} hit{'s' if len(session.hits) != 1 else ''} in {steps_text(session)} "
          f"({session.tensors_checked} tensors checked)")
    for skip in session.skips:
        print(f"msdbg: {skip.describe()}")
    for line in lines:
        print(line)
    findings, unexplained = session.diagnosis()
    if session.hits or findings:
        print("diagnosis:")
        for line in format_findings(findings, unexplained):
            print("  " + line)
    if json_out:
        write_json(session, json_out)
    if session.record_path:
        print(f"msdbg: flight recording: {session.record_path}  (msdbg open {session.record_path})")
    if session.errors:
        for error in session.errors:
            print(f"msdbg: error: {error}", file=sys.stderr)
        print(f"msdbg: {len(session.errors)} problem(s) with the dump (above); every other tensor was checked",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    if not unchecked and not session.tensors_checked and (offline or (session.watchpoints.items and script_code == 0)):
        what = ("no watchpoint is set" if not session.watchpoints.items else
                "no training step was captured" if not session.done else
                f"the watchpoints evaluated none of the tensors of {steps_text(session)}")
        print(f"msdbg: error: no tensor was checked ({what}): this is not a clean result", file=sys.stderr)
        return EXIT_BAD_INPUT
    if session.hits:
        return EXIT_HITS
    if unchecked and script_code == 0:
        return EXIT_BAD_INPUT
    return script_code


def not_captured(session: Session) -> str:
    """Why no training step was captured, in one line."""
    if session.coverage.uncaptured:
        return "no training step was captured: its forward and backward passes ran in PyNative mode"
    return ("no training step was captured: the script ran no optimizer update that msdbg could see (no graph "
            "holding an optimizer, no PyNative backward pass)")



def steps_text(session: Session) -> str:
    """``6 steps``, or ``6 steps and 3 eval steps``: the user's steps, training and evaluation apart."""
    counts = session.step_counts()
    train, evaluation = counts.get("train", 0), counts.get("eval", 0)
    text = f"{train} step{'s' if train != 1 else ''}"
    return text + (f" and {evaluation} eval step{'s' if evaluation != 1 else ''}" if evaluation else "")


def report_document(session: Session) -> dict:
    """The ``--json`` document: hits, errors, warnings (e.g. training not captured), diagnosis, steps skipped by
    loss scaling, step counts."""
    findings, unexplained = session.diagnosis()
    return {"hits": [hit.to_json() for hit in session.hits], "errors": list(session.errors),
            "warnings": list(session.warnings),
            "diagnosis": [finding.to_json() for finding in findings], "unexplained": unexplained,
            "loss_scale_skips": [skip.to_json() for skip in session.skips], "steps": session.step_counts()}


def check_output_path(path: str | None, rank: int | None) -> None:
    """Refuse a ``--json`` path that cannot be written before any step runs (else the report is lost at the end).
    A file this check creates is removed again."""
    if not path:
        return
    target = path.replace("{rank}", str(rank if rank is not None else 0))
    existed = os.path.lexists(target)
    try:
        with open(target, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise UsageError(f"--json {target}: {exc.strerror}") from None
    if not existed:
        os.unlink(target)


def write_json(session: Session, path: str) -> None:
    """Write the JSON report; ``{rank}`` in the path becomes this process's rank (one file per launched rank)."""
    path = path.replace("{rank}", str(session.rank if session.rank is not None else 0))
    document = report_document(session)
    try:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=1)
    except OSError as exc:
        raise UsageError(f"--json {path}: {exc.strerror}") from None


def check_dump(root: str, commands: list[CommandSource], json_out: str | None, *, rank: int | None = None,
               steps: str = "all", record: str | None = None) -> int:
    """Evaluate watchpoints on every selected step of an existing dump directory, in order."""
    spec = parse_step_spec(steps)
    session = Session(dump=DumpDir(root))
    apply_commands(session, commands)
    check_output_path(json_out, None)
    if not session.watchpoints.active():
        raise UsageError("no watchpoints, so nothing would be checked: give them with -c 'watch CONDITION' or "
                         "-x FILE (-c 'watch recommended' for a default set)")
    every = session.dump.steps()
    if not every:
        raise UsageError(f"dump directory {root}: holds no rank_N/NET/GRAPH/ITERATION folders")
    if rank is not None and rank not in session.dump.ranks():
        ranks = ", ".join(map(str, session.dump.ranks()))
        raise UsageError(f"--rank {rank}: dump directory {root} has ranks {ranks}")
    selected = [k for k in every if (rank is None or k.rank == rank) and k.iteration in spec]
    if not selected:
        raise UsageError(f"--steps {steps}: no iteration of {root} is selected")
    if record:
        start_recording(session, record, root, [root])
    try:
        for group in with_progress(session.group_steps(selected), "checking"):
            session.evaluate_user_step(group)
        session.evaluate_across_ranks(selected)
    finally:
        stop_recording(session, None)
    return finish(session, json_out, offline=True)


def with_progress(keys: list, label: str) -> Iterable:
    """Iterate with a progress bar when stderr is a terminal and there is enough work to watch."""
    if len(keys) < PROGRESS_MIN_STEPS or not sys.stderr.isatty():
        return keys
    from prompt_toolkit.output import create_output
    from prompt_toolkit.shortcuts import ProgressBar

    def bar() -> Iterator:
        with ProgressBar(title=f"msdbg: {label}", output=create_output(stdout=sys.stderr)) as progress:
            yield from progress(keys, label="steps")

    return bar()
