"""Commands from files and options: ``-x FILE``, ``-c CMD``, ``.msdbgrc`` and ``source FILE``.

A batch of commands is validated as a whole: every bad line is reported as ``FILE:LINE:COL: message`` and,
if any is bad, the watchpoints are left as they were before the batch.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass

from msdbg.commands.registry import command, run_line
from msdbg.errors import MsdbgError, UsageError
from msdbg.session import Session

RC_NAME = ".msdbgrc"
MAX_FILE_BYTES = 1 << 20  # a command file is text typed by someone; -x /dev/zero must not eat the memory
_sourcing: set[str] = set()  # files being run by 'source' now: a file that sources itself is refused


@dataclass(frozen=True)
class CommandSource:
    """A command line and where it came from: a file and line number, or ``-c``."""

    text: str
    file: str | None = None
    line: int | None = None

    def where(self, column: int | None) -> str:
        if self.file is None:
            return "-c"
        return f"{self.file}:{self.line}:{column or 1}"


class CommandErrors(UsageError):
    """Every error of a batch of commands, one line each."""

    def __init__(self, messages: list[str]):
        super().__init__("\n".join(messages))
        self.messages = messages


def read_command_file(path: str) -> list[CommandSource]:
    """The lines of a command file (UTF-8, a byte-order mark allowed, at most MAX_FILE_BYTES), each tagged with
    its file and line number. A FIFO or device is refused rather than read (it may never end)."""
    try:
        if os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path):
            raise UsageError(f"command file {path}: not a regular file")
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise UsageError(f"command file {path}: larger than {MAX_FILE_BYTES >> 20} MB; not a command file")
        lines = data.decode("utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise UsageError(f"command file {path}: {reason}") from None
    return [CommandSource(text, path, number) for number, text in enumerate(lines, start=1)]


def startup_files(skip: bool) -> list[str]:
    """``~/.msdbgrc`` then ``./.msdbgrc`` (as pdb reads ``.pdbrc``), each once, unless ``skip`` (``--nx``)."""
    if skip:
        return []
    found: list[str] = []
    for path in (os.path.join(os.path.expanduser("~"), RC_NAME), os.path.abspath(RC_NAME)):
        if os.path.isfile(path) and not any(os.path.samefile(path, seen) for seen in found):
            found.append(path)
    return found


def run_commands(session: Session, sources: list[CommandSource]) -> list[str]:
    """Run every command; on any error, restore the watchpoints and raise CommandErrors listing all of them."""
    saved = copy.deepcopy(session.watchpoints)
    outputs, errors = [], []
    for source in sources:
        try:
            output = run_line(session, source.text)
        except MsdbgError as exc:
            column = exc.column if isinstance(exc, UsageError) else None
            errors.append(f"{source.where(column)}: {exc}")
            continue
        if output:
            outputs.append(output)
    if errors:
        session.watchpoints = saved
        raise CommandErrors(errors)
    return outputs


@command("source", "source FILE", "Run the commands in FILE (all lines are checked; any error runs none).")
def source(session: Session, args: list[str]) -> str:
    if len(args) != 1:
        raise UsageError("usage: source FILE")
    key = os.path.realpath(args[0])
    if key in _sourcing:
        raise UsageError(f"source {args[0]}: already being sourced (a file that sources itself)", arg=0)
    _sourcing.add(key)
    try:
        return "\n".join(run_commands(session, read_command_file(args[0])))
    finally:
        _sourcing.discard(key)
