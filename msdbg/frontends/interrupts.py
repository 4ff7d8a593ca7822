"""Ctrl-C under the debugger: SIGINT stays blocked in every thread and is taken at step boundaries.

MindSpore installs its own SIGINT handler on every graph run, and that handler ends the process (SIGTERM). A
process-directed SIGINT goes to any one thread that does not block it; NumPy's BLAS starts a worker thread at
import, and a thread started before the mask was set keeps SIGINT unblocked. So ``msdbg run`` blocks SIGINT
before anything is imported (every later thread inherits the mask, MindSpore's included); the signal then
stays pending while a step runs, and ``take_interrupt`` consumes it at the next step boundary with
``sigtimedwait``, which works from any thread and needs no handler. Ctrl-\\ (SIGQUIT) still kills.
"""

from __future__ import annotations

import signal
import sys

_SIGINT = {signal.SIGINT}


def take_interrupt() -> bool:
    """Consume a pending Ctrl-C; True when there was one."""
    if signal.SIGINT not in signal.sigpending():
        return False
    return signal.sigtimedwait(_SIGINT, 0) is not None


def discard_typeahead() -> None:
    """Forget keys typed at the terminal while the training ran (not replayed as commands at the pause)."""
    try:
        import termios

        if sys.stdin.isatty():
            termios.tcflush(sys.stdin.fileno(), termios.TCIFLUSH)
    except (ImportError, OSError, ValueError):
        pass
