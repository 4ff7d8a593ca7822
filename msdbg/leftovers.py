"""What msdbg leaves on disk (temporary folders, the attach socket and token file) and how it goes away.

Every such path carries the PID of the process that made it. The process removes them on each exit it sees:
normal return, an exception, ``SIGTERM`` (``on_termination``) and ``SIGINT`` (a ``KeyboardInterrupt`` or
MindSpore's own handler, which ends the process with ``SIGTERM``). After an exit it cannot see (``SIGKILL``,
``os._exit``) the next msdbg run removes what a dead PID left (``sweep``).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import sys
import tempfile
import threading
from typing import Callable

_FOLDER = re.compile(r"^msdbg-(?:dump|config|link)-(\d+)-", re.ASCII)
_actions: dict[int, Callable[[], None]] = {}
_installed: list[bool] = [False]


def private_dir(kind: str, parent: str | None = None) -> str:
    """A new private folder ``msdbg-KIND-PID-XXXX`` (0700) in ``parent`` (default: the temporary directory)."""
    return tempfile.mkdtemp(prefix=f"msdbg-{kind}-{os.getpid()}-", dir=parent)


def alive(pid: int) -> bool:
    """Whether a process with this PID exists (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owned_by_me(info: os.stat_result) -> bool:
    return info.st_uid == os.getuid()


def sweep(parent: str | None = None) -> list[str]:
    """Remove the ``msdbg-dump-*``/``msdbg-config-*``/``msdbg-link-*`` folders that dead msdbg processes of this user left in
    ``parent`` (default: the temporary directory); never follows a link. Returns the removed paths."""
    parent = parent or tempfile.gettempdir()
    removed = []
    try:
        names = os.listdir(parent)
    except OSError:
        return removed
    for name in names:
        match = _FOLDER.match(name)
        path = os.path.join(parent, name)
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if match and stat.S_ISDIR(info.st_mode) and owned_by_me(info) and not alive(int(match[1])):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def on_termination(action: Callable[[], None]) -> Callable[[], None]:
    """Run ``action`` if ``SIGTERM`` ends this process (it is then ended by ``SIGTERM`` as it would have been);
    return a function that forgets it (call it once the action has run on the normal path). The handler is
    installed only where the script has none of its own; a script that installs one later keeps it, and the
    next run's sweep removes what is left."""
    key = id(action)
    _actions[key] = action
    if not _installed[0] and threading.current_thread() is threading.main_thread() \
            and signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _terminated)
        _installed[0] = True
    return lambda: _actions.pop(key, None)


def _terminated(signum: int, frame: object) -> None:
    for action in list(_actions.values()):
        try:
            action()
        except Exception as exc:  # clean up the rest; the process ends either way
            print(f"msdbg: clean-up at SIGTERM: {exc}", file=sys.stderr)
    _actions.clear()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
