"""msdbg: an interactive debugger with watchpoints for MindSpore training."""

__version__ = "0.1.0"


def enable(listen: str | None = None, keep_steps: int = 2) -> str:
    """Let ``msdbg attach`` look into this training. Call once, before the first training step.

    ``listen``: None for a Unix socket named by this PID, or ``"tcp:127.0.0.1:PORT"`` (a token is printed).
    Returns the command that attaches.
    """
    from msdbg.frontends.listen import enable as _enable

    return _enable(listen, keep_steps)
