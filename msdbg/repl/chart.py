"""A line chart of a series over steps for the terminal, and width-aware sparklines.

Many steps share a column: each column shows the min-to-max range of its steps' values, so a one-step spike still
shows however long the run. Steps whose value was NaN or Inf are marked on a row below the axis. Pure functions;
the width is a parameter.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

_MARK = "x"
_CELL = "█"
_BLOCKS = "▁▂▃▄▅▆▇█"


class Column(NamedTuple):
    """The steps that fall in one column: their first and last step, finite min and max, and NaN/Inf seen."""

    first: int
    last: int
    low: float | None
    high: float | None
    nonfinite: bool


def columns(points: Sequence[tuple[int, float | None, bool]], count: int) -> list[Column]:
    """Spread (step, value, nonfinite) points over at most ``count`` columns by step, keeping each column's range."""
    if not points:
        return []
    first, last = points[0][0], points[-1][0]
    count = max(1, min(count, last - first + 1, len(points)))
    span = max(last - first, 1)
    buckets: list[list] = [[] for _ in range(count)]
    for point in points:
        buckets[min(count - 1, (point[0] - first) * count // (span + 1))].append(point)
    result = []
    for bucket in buckets:
        if not bucket:
            continue
        finite = [v for _, v, bad in bucket if v is not None and not bad and math.isfinite(v)]
        result.append(Column(bucket[0][0], bucket[-1][0], min(finite) if finite else None,
                             max(finite) if finite else None, any(bad for _, _, bad in bucket)))
    return result


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def line_chart(points: Sequence[tuple[int, float | None, bool]], *, width: int, height: int = 12,
               title: str = "") -> str:
    """The series as ``height`` rows of at most ``width`` characters, y labels at the left, steps below."""
    finite = [v for _, v, bad in points if v is not None and not bad and math.isfinite(v)]
    if not points:
        return f"{title}: nothing recorded" if title else "nothing recorded"
    low, high = (min(finite), max(finite)) if finite else (0.0, 0.0)
    labels = [fmt(high), fmt((low + high) / 2), fmt(low)] if finite else ["-", "-", "-"]
    label_width = max(map(len, labels))
    plot_width = max(width - label_width - 2, 8)
    cols = columns(points, plot_width)
    grid = [[" "] * len(cols) for _ in range(height)]
    for x, column in enumerate(cols):
        if column.low is None:
            continue
        top, bottom = _row(column.high, low, high, height), _row(column.low, low, high, height)
        for y in range(top, bottom + 1):
            grid[y][x] = _CELL
    per_column = math.ceil(len(points) / len(cols))
    lines = [f"{title} ({len(points)} steps, {points[0][0]}..{points[-1][0]}; "
             f"{'1 step' if per_column == 1 else f'up to {per_column} steps'} per column, min-max shown)"]
    for y, row in enumerate(grid):
        label = labels[0] if y == 0 else labels[2] if y == height - 1 else labels[1] if y == height // 2 else ""
        lines.append(f"{label:>{label_width}} ┤{''.join(row)}")
    lines.append(" " * label_width + " └" + "─" * len(cols))
    lines.append(" " * (label_width + 2) + _axis_labels(cols))
    bad_steps = [step for step, value, bad in points if bad]
    if bad_steps:
        marks = "".join(_MARK if column.nonfinite else " " for column in cols)
        lines.append(" " * (label_width + 2) + marks.rstrip())
        shown = ", ".join(map(str, bad_steps[:8])) + (" ..." if len(bad_steps) > 8 else "")
        lines.append(f"{_MARK}: NaN/Inf at {len(bad_steps)} step{'s' if len(bad_steps) != 1 else ''}: {shown}")
    return "\n".join(line[:width] if i else line for i, line in enumerate(lines))


def _row(value: float, low: float, high: float, height: int) -> int:
    if high == low:
        return height // 2
    share = (value - low) / (high - low) if math.isfinite(high - low) else (value / 2 - low / 2) / (high / 2 - low / 2)
    return min(height - 1, max(0, round((1 - share) * (height - 1))))


def _axis_labels(cols: list[Column]) -> str:
    """The first, middle and last columns' steps under the axis, where they fit."""
    row = [" "] * len(cols)
    for at in (0, len(cols) // 2, len(cols) - 1):
        text = str(cols[at].first if at < len(cols) - 1 else cols[at].last)
        start = min(max(at - len(text) // 2, 0), len(cols) - len(text)) if at else 0
        if start >= 0 and all(c == " " for c in row[max(start - 1, 0):start + len(text) + 1]):
            row[start:start + len(text)] = text
    return "".join(row).rstrip()


def sparkline(points: Sequence[tuple[int, float | None, bool]], width: int) -> str:
    """At most ``width`` blocks; each the largest value of its steps ('!' where one was NaN/Inf, '·' none)."""
    cols = columns(points, width)
    finite = [c.high for c in cols if c.high is not None] + [c.low for c in cols if c.low is not None]
    low, high = (min(finite), max(finite)) if finite else (0.0, 0.0)
    out = []
    for column in cols:
        if column.nonfinite:
            out.append("!")
        elif column.high is None:
            out.append("·")
        else:
            out.append(_BLOCKS[(len(_BLOCKS) - 1) - _row(column.high, low, high, len(_BLOCKS))])
    return "".join(out)
