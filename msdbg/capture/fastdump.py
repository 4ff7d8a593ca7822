"""Keep msdbg's own dump on a memory file system (``/dev/shm``) while it has room; move it to disk when not.

MindSpore writes every step's tensors and msdbg reads them back at once, so the dump's file system sits on the
training's critical path: on the 2-core test machine, LeNet-size steps took 1.6x the plain step time with the dump
under ``/tmp`` (disk) and 1.2x under ``/dev/shm`` (the LeNet run of benchmarks/overhead.py, 3 rounds). Only a dump msdbg owns (no
``--dump-dir``) is placed there, and only when twice the reserve (``MSDBG_FAST_DUMP_MIN_FREE_MB``, 2 GiB) is
free. The dump root stays on disk; only ``{root}/rank_{r}`` is a symbolic link to a private folder on the fast
file system, so MindSpore, the store and retention use the same paths throughout. When free space there falls
below the reserve plus room for the retained steps, the rank's folder is copied to ``{root}/.rank_{r}.disk`` at
a step boundary (MindSpore is idle then) and the link is switched to it atomically; MindSpore follows the link
for every file it writes afterwards (measured with MindSpore 2.10).
"""

from __future__ import annotations

import os
import shutil
import tempfile

from msdbg.capture.dumppath import safe_temp_parent
from msdbg.errors import UsageError
from msdbg.leftovers import private_dir, sweep
from msdbg.numeric import is_ascii_int
from msdbg.store.dumpdir import DumpDir, StepKey

FAST_DIR_ENV = "MSDBG_FAST_DUMP_DIR"  # where to put it; default /dev/shm, empty: never
DEFAULT_FAST_DIR = "/dev/shm"
MIN_FREE_ENV = "MSDBG_FAST_DUMP_MIN_FREE_MB"  # left free there for everything else that uses it; default 2048
DEFAULT_MIN_FREE_MB = 2048


def min_free_bytes() -> int:
    """Free space to leave on the fast file system (``MSDBG_FAST_DUMP_MIN_FREE_MB``, default 2 GiB)."""
    value = os.environ.get(MIN_FREE_ENV, "")
    return (int(value) if is_ascii_int(value) else DEFAULT_MIN_FREE_MB) << 20


def free_bytes(path: str) -> int:
    """Bytes an unprivileged process may still write on the file system holding ``path``."""
    info = os.statvfs(path)
    return info.f_bavail * info.f_frsize


class FastDump:
    """A rank folder of msdbg's dump that lives on a fast file system behind a symbolic link."""

    def __init__(self, root: str, rank: int, fast_dir: str):
        self.link = os.path.join(root, f"rank_{rank}")
        self.fast_dir = fast_dir
        self.disk_dir = os.path.join(root, f".rank_{rank}.disk")
        self.moved = False
        self._step_bytes: dict[tuple[str, int], int] = {}

    def keep_room(self, dump: DumpDir, keep_steps: int, listed: list[StepKey] | None = None) -> str | None:
        """At a step boundary: move to disk when the retained steps may no longer fit; return what was done.
        ``listed``: ``dump.steps()`` when the caller has it already."""
        if self.moved:
            return None
        try:
            for key in dump.steps() if listed is None else listed:
                if (key.net, key.graph) not in self._step_bytes:  # a graph's first step tells its size
                    self._step_bytes[(key.net, key.graph)] = _folder_bytes(dump.step_dir(key))
            needed = min_free_bytes() + (keep_steps + 1) * sum(self._step_bytes.values())
            free = free_bytes(self.fast_dir)
        except OSError:  # a folder pruned meanwhile, or the file system unreadable: look again next step
            return None
        if free >= needed:
            return None
        return self.move_to_disk(f"{free >> 20} MB free, {needed >> 20} MB wanted")

    def move_to_disk(self, reason: str) -> str:
        """Copy the rank folder to disk, switch the link to the copy, free the fast file system."""
        target = os.path.realpath(self.link)
        try:
            shutil.copytree(target, self.disk_dir, symlinks=True)
            swap = self.link + ".swap"
            os.symlink(self.disk_dir, swap)
            os.replace(swap, self.link)
        except OSError as exc:
            shutil.rmtree(self.disk_dir, ignore_errors=True)
            self.moved = True  # do not try every step; training goes on where it is
            return f"could not move the dump from {self.fast_dir} to disk ({exc}); it stays there"
        self.moved = True
        shutil.rmtree(self.fast_dir, ignore_errors=True)
        return f"dump moved from {self.fast_dir} to {self.disk_dir} ({reason}); use --dump-dir to choose"

    def remove(self) -> None:
        """Delete the fast folder (the root, with the link and any disk copy, is removed by its owner)."""
        shutil.rmtree(self.fast_dir, ignore_errors=True)


def fast_parent() -> str:
    """Where dumps msdbg owns go when there is room (``MSDBG_FAST_DUMP_DIR``, default /dev/shm; empty: never)."""
    return os.environ.get(FAST_DIR_ENV, DEFAULT_FAST_DIR)


def sweep_leftovers() -> None:
    """Remove what killed msdbg runs of this user left in the temporary directory and on the fast file system
    (where it holds memory)."""
    parents = {tempfile.gettempdir(), fast_parent()}
    try:
        parents.add(safe_temp_parent("msdbg's clean-up"))
    except UsageError:
        pass
    for parent in parents - {""}:
        sweep(parent)


def place_on_fast_storage(root: str, rank: int) -> FastDump | None:
    """Make ``{root}/rank_{rank}`` a link to a new private folder on the fast file system, if one has room."""
    parent = fast_parent()
    if not parent or not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
        return None
    try:
        if free_bytes(parent) < 2 * min_free_bytes():
            return None
        fast_dir = private_dir("dump", parent)
        os.mkdir(os.path.join(fast_dir, f"rank_{rank}"))
        os.symlink(os.path.join(fast_dir, f"rank_{rank}"), os.path.join(root, f"rank_{rank}"))
    except OSError:
        return None
    return FastDump(root, rank, fast_dir)


def _folder_bytes(path: str) -> int:
    total = 0
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.is_file(follow_symlinks=False):
                total += entry.stat(follow_symlinks=False).st_size
    return total
