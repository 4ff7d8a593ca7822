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
import threading
from typing import Any, Callable

_SIGINT = {signal.SIGINT}


def block_interrupts() -> None:
    """Block SIGINT in the calling thread (and so in every thread it starts from now on)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGINT)


def start_thread(target: Callable[..., Any], *args: Any, name: str) -> threading.Thread:
    """Start a daemon thread that blocks SIGINT first: it never runs a handler MindSpore installed, even when
    started by a thread that had SIGINT unblocked (``msdbg.enable()`` in a plain script)."""

    def run() -> None:
        block_interrupts()
        target(*args)

    thread = threading.Thread(target=run, daemon=True, name=name)
    thread.start()
    return thread


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
