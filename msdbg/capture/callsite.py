"""The line of the user's code that led to a call: the innermost frame outside MindSpore, msdbg and runpy."""

from __future__ import annotations

import linecache
import os
import sys
from types import FrameType

import msdbg
from msdbg.store.graph import SourceLine, is_mindspore_path

_MSDBG_DIR = os.path.dirname(os.path.abspath(msdbg.__file__)) + os.sep
_library: dict[str, bool] = {}


def is_library_file(path: str) -> bool:
    """MindSpore's, msdbg's or the interpreter's own code (cached per file name)."""
    known = _library.get(path)
    if known is None:
        known = _library[path] = (is_mindspore_path(path) or path.startswith(_MSDBG_DIR) or path.startswith("<")
                                  or os.path.basename(path) in ("runpy.py", "functools.py"))
    return known


def user_frame(depth: int = 1) -> FrameType | None:
    """The innermost frame above the caller (``depth`` frames up) that is in the user's code."""
    frame = sys._getframe(depth + 1)
    while frame is not None and is_library_file(frame.f_code.co_filename):
        frame = frame.f_back
    return frame


def source_line(frame: FrameType | None) -> SourceLine | None:
    """The frame's current line as a SourceLine (path, line number, code); one object per line, cached."""
    if frame is None:
        return None
    key = (frame.f_code.co_filename, frame.f_lineno)
    line = _lines.get(key)
    if line is None:
        line = _lines[key] = SourceLine(key[0], key[1], linecache.getline(*key))
    return line


_lines: dict[tuple[str, int], SourceLine] = {}


def user_call_site() -> str:
    """``path:line  code`` of the user's line that led here, for notes."""
    line = source_line(user_frame(2))
    return str(line) if line is not None else "an unknown line"
