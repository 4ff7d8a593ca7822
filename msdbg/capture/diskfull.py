"""A full disk under the dump: msdbg stops checking steps, says so once, and the training goes on.

MindSpore keeps training when its dump writes fail (measured on CPU with MindSpore 2.10: empty or truncated
``.npy`` files, no error raised to the script). Reading those files would give one error per tensor per step, so
when the dump's file system has less than ``FULL_BELOW_BYTES`` free at a step boundary, the steps not yet checked
are dropped (their folders removed, which also gives MindSpore room again) and one line says from which step on
nothing was checked. What was found before stays in the report; the run's exit code says the check is partial.
"""

from __future__ import annotations

import os
import shutil

FULL_BELOW_BYTES = 64 << 10


def free_bytes(path: str) -> int | None:
    """Bytes free to this process on the file system holding ``path`` (None when it cannot be asked)."""
    try:
        info = os.statvfs(path)
    except OSError:
        return None
    return info.f_bavail * info.f_frsize


class DiskGuard:
    """Watches the file system of a rank's dump folder at each step boundary."""

    def __init__(self, rank_dir: str):
        self.rank_dir = rank_dir
        self.message: str | None = None  # set once the disk was found full

    def full(self) -> bool:
        if self.message is not None:
            return True
        free = free_bytes(self.rank_dir if os.path.exists(self.rank_dir) else os.path.dirname(self.rank_dir))
        return free is not None and free < FULL_BELOW_BYTES

    def drop(self, step_dirs: list[tuple[int, str]]) -> str | None:
        """Remove the unchecked step folders (iteration, path); return the one-line message the first time."""
        for _, path in step_dirs:
            shutil.rmtree(path, ignore_errors=True)
        if self.message is not None or not step_dirs:
            return None
        first = min(iteration for iteration, _ in step_dirs)
        self.message = (f"the disk holding {self.rank_dir} is full: steps from {first} on are not checked (their "
                        "dump folders are removed); the training goes on and what was found before is kept")
        return self.message
