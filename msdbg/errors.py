"""The one exception type front ends turn into a one-line message."""


class MsdbgError(Exception):
    """A user-facing error: bad usage or bad input. Its text is one line that names the thing and the place."""


class UsageError(MsdbgError):
    """A malformed command, option or watchpoint."""
