"""Worker threads msdbg starts inside the training process."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor


def worker(name: str) -> ThreadPoolExecutor:
    """A one-thread pool whose thread keeps SIGINT blocked: MindSpore replaces the SIGINT handler on each graph run
    with one that ends the process, and a signal delivered to our thread would run it there."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix=name, initializer=_block_sigint)


def _block_sigint() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
