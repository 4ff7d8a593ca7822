"""Threads msdbg starts inside the training process: every one keeps SIGINT blocked.

MindSpore replaces the SIGINT handler on each graph run with one that ends the process, and a signal delivered to
one of our threads would run it there (see frontends/interrupts.py for how Ctrl-C is taken instead).
"""

from __future__ import annotations

import signal
import threading
from concurrent.futures import ThreadPoolExecutor
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


def worker(name: str) -> ThreadPoolExecutor:
    """A one-thread pool whose thread keeps SIGINT blocked."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix=name, initializer=block_interrupts)
