"""The exception types front ends turn into a one-line message."""

from __future__ import annotations


class MsdbgError(Exception):
    """A user-facing error: bad usage or bad input. Its text is one line that names the thing and the place."""


class InternalError(MsdbgError):
    """A bug in msdbg met while running a command, reported as one line naming the command and the cause."""


class UsageError(MsdbgError):
    """A malformed command, option or watchpoint.

    ``arg`` is the index of the offending argument of a command (0 = first word after the command name, -1 =
    the command name itself); the command layer turns it into ``column``, the 1-based column in the line.
    """

    def __init__(self, message: str, *, arg: int | None = None, column: int | None = None):
        super().__init__(message)
        self.arg = arg
        self.column = column
