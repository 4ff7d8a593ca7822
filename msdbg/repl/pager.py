"""Show command output: wrapped to the terminal, and through a pager when it is longer than the screen.

Only on a terminal: output to a pipe or a file is printed as it is (whole lines, no pager), so scripts and tests
read what the command returned.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys

from msdbg.numeric import is_ascii_int
from msdbg.repl.layout import terminal_width, wrap

PAGER_ENV = "MSDBG_PAGER"  # the pager command (default: $PAGER, else 'less -R -F -X'); empty: never page


def output_width() -> int | None:
    """The width output is wrapped to: the terminal's, or ``$COLUMNS`` when set; None on a pipe."""
    if sys.stdout.isatty() or is_ascii_int(os.environ.get("COLUMNS", "")):
        return terminal_width()
    return None


def show(text: str) -> None:
    """Print command output: wrapped to the terminal's width, paged when it would not fit the screen."""
    width = output_width()
    if width is not None:
        text = wrap(text, width)
    if _should_page(text) and _page(text):
        return
    print(text, flush=True)


def _should_page(text: str) -> bool:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return False
    rows = shutil.get_terminal_size((80, 24)).lines
    return text.count("\n") + 1 > rows - 1


def _pager_command() -> list[str] | None:
    command = os.environ.get(PAGER_ENV, os.environ.get("PAGER", "less -R -F -X"))
    words = shlex.split(command) if command.strip() else []
    return words if words and shutil.which(words[0]) else None


def _page(text: str) -> bool:
    """Run the pager on ``text`` ('q' quits it); False when there is none or it fails (then print)."""
    command = _pager_command()
    if command is None:
        return False
    try:
        subprocess.run(command, input=text, text=True, check=False, preexec_fn=_pager_signals)
    except OSError:
        return False
    return True


def _pager_signals() -> None:
    """The pager gets Ctrl-C (msdbg keeps SIGINT blocked while training, and the mask would be inherited)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)
