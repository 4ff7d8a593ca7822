"""Fitting text to the terminal: its width, wrapping at word boundaries, aligned tables that shrink to fit."""

from __future__ import annotations

import re
import shutil
from typing import Sequence

MIN_WIDTH = 40


def terminal_width() -> int:
    """The terminal's columns (``$COLUMNS`` first, 80 when unknown), at least MIN_WIDTH."""
    return max(shutil.get_terminal_size((80, 24)).columns, MIN_WIDTH)


def wrap(text: str, width: int, indent: str = "    ") -> str:
    """Each line of ``text`` wrapped at spaces to ``width``; continuation lines indented past the line's own
    indent. A word longer than a line (a tensor's full name) is broken after a '/', never inside a part."""
    out = []
    for line in text.splitlines() or [""]:
        if len(line) <= width:
            out.append(line)
            continue
        lead = line[:len(line) - len(line.lstrip())]
        out.extend(hanging(lead, line.strip(), width, lead + indent).splitlines())
    return "\n".join(out)


def hanging(head: str, text: str, width: int, indent: str | None = None) -> str:
    """``head`` followed by ``text`` filled to ``width``; later lines start with ``indent`` (default: as many
    spaces as ``head``), so the text stands in a column of its own. Spacing between words is kept."""
    indent = " " * len(head) if indent is None else indent
    lines, current = [], head
    room = max(width - len(indent), 8)
    for space, word in re.findall(r"(\s*)(\S+)", text):
        for index, piece in enumerate(_pieces(word, room)):
            glue = space if index == 0 and current.strip() else ""
            if len(current) + len(glue) + len(piece) > width and current.strip():
                lines.append(current.rstrip())
                current, glue = indent, ""
            current += glue + piece
    lines.append(current.rstrip())
    return "\n".join(lines)


def _pieces(word: str, room: int) -> list[str]:
    """A word as itself, or cut after '/' into pieces of at most ``room`` characters where the parts allow."""
    if len(word) <= room or "/" not in word:
        return [word]
    pieces, current = [], ""
    for part in word.split("/"):
        part_with_slash = part + "/"
        if current and len(current) + len(part_with_slash) > room:
            pieces.append(current)
            current = ""
        current += part_with_slash
    pieces.append(current[:-1])
    return [p for p in pieces if p]


def shorten(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, keeping its end (the last parts of a scope name matter most)."""
    if len(text) <= width:
        return text
    return "…" + text[len(text) - width + 1:] if width > 1 else text[-width:]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], width: int, *, shrink: int = 0,
          right: Sequence[int] = ()) -> str:
    """Aligned columns separated by two spaces; column ``shrink`` (shortened from the left) gives way when the
    table is wider than ``width``. Columns in ``right`` are right-aligned (numbers)."""
    cells = [list(headers)] + [list(row) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    excess = sum(widths) + 2 * (len(widths) - 1) - width
    if excess > 0:
        widths[shrink] = max(widths[shrink] - excess, 8)
    lines = []
    for row in cells:
        parts = []
        for i, cell in enumerate(row):
            cell = shorten(cell, widths[i]) if i == shrink else cell
            parts.append(cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]))
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)
