"""Dump paths MindSpore accepts.

MindSpore refuses a dump ``path`` holding anything but letters, digits, ``-``, ``_`` and ``/`` (measured,
MindSpore 2.10: the first graph compile fails with "Dump path only support alphabets, digit or {'-', '_', '/'}"
and the training dies). It follows symbolic links, so a folder the user names with a dot is given to it through
a link in a folder whose path it accepts; msdbg's private dump folder is made in such a folder.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile

from msdbg.errors import UsageError

_ACCEPTED = re.compile(r"^[A-Za-z0-9_/-]+$")
_FALLBACK_PARENTS = ("/tmp", "/var/tmp", "/dev/shm")


def accepted(path: str) -> bool:
    """Whether MindSpore takes this absolute path as a dump path."""
    return bool(_ACCEPTED.match(path))


def safe_temp_parent(what: str) -> str:
    """The temporary folder (``TMPDIR``, else /tmp, /var/tmp, /dev/shm) whose path MindSpore accepts.

    Raises UsageError naming ``what`` needed it when none is writable.
    """
    for parent in (tempfile.gettempdir(), *_FALLBACK_PARENTS):
        parent = os.path.abspath(parent)
        if accepted(parent) and os.path.isdir(parent) and os.access(parent, os.W_OK | os.X_OK):
            return parent
    raise UsageError(f"{what}: MindSpore accepts only letters, digits, '-', '_' and '/' in a dump path, and no "
                     f"writable temporary folder has such a path (TMPDIR={tempfile.gettempdir()}); set TMPDIR to one")


def private_dump_dir() -> str:
    """A new private folder for a dump msdbg owns, at a path MindSpore accepts."""
    return tempfile.mkdtemp(prefix="msdbg-dump-", dir=safe_temp_parent("the private dump folder"))


class MindSporePath:
    """The path to give MindSpore for a dump folder: the folder itself when MindSpore accepts its path, else a
    symbolic link to it in a temporary folder (removed by ``remove``)."""

    def __init__(self, dump_root: str):
        dump_root = os.path.abspath(dump_root)
        self._link_dir: str | None = None
        if accepted(dump_root):
            self.path = dump_root
            return
        self._link_dir = tempfile.mkdtemp(prefix="msdbg-link-", dir=safe_temp_parent(f"--dump-dir {dump_root}"))
        self.path = os.path.join(self._link_dir, "dump")
        os.symlink(dump_root, self.path)

    def remove(self) -> None:
        if self._link_dir is not None:
            shutil.rmtree(self._link_dir, ignore_errors=True)
            self._link_dir = None
