"""Text renderings of tensors for the terminal: arrays, statistics, histograms, diffs, index parsing.

Every function is pure: colour is a parameter, never detected here. Arrays may be huge read-only memmaps, so
whole-array work goes through ``_chunks``, which reads a bounded number of elements at a time.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from types import EllipsisType

RED = "\x1b[1;31m"
RESET = "\x1b[0m"
_CHUNK = 1 << 20  # elements read at a time by chunked passes
_NONFINITE_TOKEN = re.compile(r"(?<![\w.])[-+]?(?:nan|inf)\b")
_STAT_ORDER = ("size", "shape", "dtype", "min", "max", "mean", "abs_mean", "l2norm", "zero", "neg", "pos",
               "nan", "pos_inf", "neg_inf")
_INT = re.compile(r"[+-]?[0-9]+")


def _red(text: str, color: bool) -> str:
    return f"{RED}{text}{RESET}" if color else text


def _fmt(value: object) -> str:
    """Floats with 6 significant digits, None as '-', anything else as str()."""
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    return "-" if value is None else str(value)


def _index(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(flat, shape))


def _blocks(shape: tuple[int, ...]) -> Iterator[tuple]:
    """Index tuples cutting an array of this shape into C-ordered pieces of at most _CHUNK elements."""
    size = math.prod(shape)
    if size <= _CHUNK:
        yield ()
        return
    row = size // shape[0]
    step = _CHUNK // row
    if step:
        for start in range(0, shape[0], step):
            yield (slice(start, start + step),)
    else:
        for i in range(shape[0]):
            for rest in _blocks(shape[1:]):
                yield (i, *rest)


def _chunks(array: np.ndarray) -> Iterator[np.ndarray]:
    """The array's elements in C order as 1-D pieces; views where the array is contiguous, small copies elsewhere."""
    for index in _blocks(array.shape):
        yield np.asarray(array[index]).reshape(-1)


class _Census(NamedTuple):
    nan: int
    pos_inf: int
    neg_inf: int
    first_bad: int | None  # flat C-order index of the first non-finite element
    low: np.generic | None  # smallest finite value
    high: np.generic | None  # largest finite value

    @property
    def bad(self) -> int:
        return self.nan + self.pos_inf + self.neg_inf

    def counts(self) -> str:
        return f"nan: {self.nan}  +inf: {self.pos_inf}  -inf: {self.neg_inf}"


def _census(array: np.ndarray) -> _Census:
    """One chunked pass: non-finite counts, where the first one is, and the finite range."""
    nan = pos_inf = neg_inf = offset = 0
    first = low = high = None
    floating = np.issubdtype(array.dtype, np.floating)
    for chunk in _chunks(array):
        size = chunk.size
        if floating:
            finite = np.isfinite(chunk)
            if not finite.all():
                nan += int(np.count_nonzero(np.isnan(chunk)))
                pos_inf += int(np.count_nonzero(chunk == np.inf))
                neg_inf += int(np.count_nonzero(chunk == -np.inf))
                first = offset + int(np.argmin(finite)) if first is None else first
                chunk = chunk[finite]
        if chunk.size:
            low = chunk.min() if low is None else min(low, chunk.min())
            high = chunk.max() if high is None else max(high, chunk.max())
        offset += size
    return _Census(nan, pos_inf, neg_inf, first, low, high)


def format_array(array: np.ndarray, *, full: bool = False, color: bool = False, max_elements: int = 1000) -> str:
    """Header, a NaN/Inf census line when there are any, then the values (edge items only when large)."""
    lines = [f"shape={tuple(array.shape)} dtype={array.dtype}"]
    if np.issubdtype(array.dtype, np.floating):
        census = _census(array)
        if census.bad:
            where = _index(census.first_bad, array.shape)
            lines.append(_red(f"{census.counts()} (first at index {where})", color))
    if full or array.size <= max_elements:
        body = np.array2string(array, threshold=sys.maxsize)
    else:
        body = np.array2string(array, threshold=max_elements, edgeitems=3)
    if color:
        body = _NONFINITE_TOKEN.sub(lambda match: _red(match.group(), True), body)
    lines.append(body)
    return "\n".join(lines)


def _stat_key(name: str) -> tuple[int, str]:
    return (_STAT_ORDER.index(name), "") if name in _STAT_ORDER else (len(_STAT_ORDER), name)


def _alarming(name: str, value: object) -> bool:
    return name in ("nan", "pos_inf", "neg_inf") and isinstance(value, (int, np.integer)) and value > 0


def stats_table(stats: dict[str, object], *, color: bool = False) -> str:
    """Aligned 'name  value' lines in a fixed order; non-zero NaN/Inf counts highlighted."""
    names = sorted(stats, key=_stat_key)
    width = max((len(name) for name in names), default=0)
    return "\n".join(f"{name.ljust(width)}  {_red(_fmt(stats[name]), color and _alarming(name, stats[name]))}"
                     for name in names)


def _bin_counts(array: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """np.histogram over the finite values with fixed edges, accumulated chunk by chunk."""
    counts = np.zeros(len(edges) - 1, dtype=np.int64)
    for chunk in _chunks(array):
        if chunk.dtype == np.bool_:
            chunk = chunk.astype(np.uint8)
        elif np.issubdtype(chunk.dtype, np.floating):
            chunk = chunk[np.isfinite(chunk)]
        counts += np.histogram(chunk, bins=edges)[0]
    return counts


def _edges(low: float, high: float, bins: int) -> np.ndarray:
    """np.histogram's equal-width edges in float64; halved and doubled back (exactly) if high - low overflows."""
    if math.isinf(high - low):
        return np.linspace(low / 2, high / 2, bins + 1) * 2
    return np.linspace(low, high, bins + 1)


def _edge_labels(edges: np.ndarray) -> list[str]:
    """Fixed-point labels with enough decimals to tell neighbouring edges apart; scientific when extreme."""
    values = [float(edge) for edge in edges]
    step = (values[-1] - values[0]) / max(len(values) - 1, 1)
    if max(map(abs, values)) >= 1e7 or 0 < step < 1e-6:
        return [f"{value:.4e}" for value in values]
    decimals = min(max(2 - math.floor(math.log10(step)), 0), 8) if step else 3
    return [f"{value:.{decimals}f}" for value in values]


def histogram(array: np.ndarray, *, bins: int = 20, width: int = 50, color: bool = False,
              ascii_only: bool = False) -> str:
    """One line per bin of the finite values: '[low, high) bar count'; excluded NaN/Inf counted below."""
    if array.size == 0:
        return "empty array"
    census = _census(array)
    excluded = [_red(f"excluded {census.counts()}", color)] if census.bad else []
    if census.low is None:
        return "\n".join(["no finite values", *excluded])
    if census.low == census.high:
        edges = np.array([census.low, census.high])
        counts = np.array([array.size - census.bad])
    else:
        if not np.issubdtype(array.dtype, np.floating):  # no more bins than distinct integers
            bins = min(bins, int(census.high) - int(census.low) + 1)
        edges = _edges(float(census.low), float(census.high), bins)
        counts = _bin_counts(array, edges)
    labels = _edge_labels(edges)
    label_width = max(map(len, labels))
    peak = max(int(counts.max()), 1)
    block = "#" if ascii_only else "█"
    lines = []
    for i, count in enumerate(counts):
        length = max(round(width * int(count) / peak), 1 if count else 0)
        close = "]" if i == len(counts) - 1 else ")"
        lines.append(f"[{labels[i]:>{label_width}}, {labels[i + 1]:>{label_width}}{close} "
                     f"{(block * length).ljust(width)} {count}")
    return "\n".join(lines + excluded)


class _Diff(NamedTuple):
    differing: int
    skipped: int  # differing positions with a NaN or Inf on either side: left out of max, mean and relative
    compared: int  # positions finite on both sides
    sum_abs_diff: float
    sum_abs_a: float
    max_at: tuple[float, int, object, object] | None  # (|a-b|, flat index, a value, b value)


def _diff(a: np.ndarray, b: np.ndarray) -> _Diff:
    """Chunked comparison of two same-shape arrays; NaN equals NaN."""
    differing = skipped = compared = offset = 0
    sum_d = sum_a = 0.0
    best = None
    for x, y in zip(_chunks(a), _chunks(b)):
        xf, yf = x.astype(np.float64), y.astype(np.float64)
        differ = (x != y) & ~(np.isnan(xf) & np.isnan(yf))
        valid = np.isfinite(xf) & np.isfinite(yf)
        xs, ys = np.where(valid, xf, 0.0), np.where(valid, yf, 0.0)
        d = np.abs(xs - ys)
        differing += int(np.count_nonzero(differ))
        skipped += int(np.count_nonzero(differ & ~valid))
        compared += int(np.count_nonzero(valid))
        sum_d += float(d.sum())
        sum_a += float(np.abs(xs).sum())
        d[~valid] = -1.0
        i = int(np.argmax(d)) if d.size else 0
        if d.size and d[i] >= 0 and (best is None or d[i] > best[0]):
            best = (float(d[i]), offset + i, x[i], y[i])
        offset += x.size
    return _Diff(differing, skipped, compared, sum_d, sum_a, best)


def diff_summary(a: np.ndarray, b: np.ndarray, *, label_a: str, label_b: str, color: bool = False) -> str:
    """Differing elements, max and mean |a-b| (with where the max is) and relative change of b against a."""
    if a.shape != b.shape:
        return f"{label_a} and {label_b} differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}"
    diff = _diff(a, b)
    share = f" ({100 * diff.differing / a.size:.3g}%)" if a.size else ""
    lines = [f"{label_a} vs {label_b}: shape={tuple(a.shape)} dtype={a.dtype} vs {b.dtype}",
             f"differing elements: {_red(str(diff.differing), color and diff.differing > 0)} of {a.size}{share}"]
    if diff.max_at is None:
        lines.append("max abs diff: n/a (no position finite on both sides)")
    else:
        value, flat, at_a, at_b = diff.max_at
        where = f" at index {_index(flat, a.shape)}: {label_a}={_fmt(at_a)} {label_b}={_fmt(at_b)}" if value else ""
        lines.append(f"max abs diff: {_fmt(value)}{where}")
        lines.append(f"mean abs diff: {_fmt(diff.sum_abs_diff / diff.compared)}")
        relative = _fmt(diff.sum_abs_diff / diff.sum_abs_a) if diff.sum_abs_a else "n/a"
        lines.append(f"relative change: {relative} (mean|{label_a}-{label_b}| / mean|{label_a}|)")
    if diff.skipped:
        lines.append(_red(f"differing with NaN/Inf: {diff.skipped} (left out of max, mean and relative)", color))
    return "\n".join(lines)


def _parse_int(field: str, part: str, body: str) -> int | None:
    field = field.strip()
    if not field:
        return None
    if not _INT.fullmatch(field):
        raise ValueError(f"bad index {part!r} in [{body}]: expected integers")
    return int(field)


def _parse_part(part: str, body: str) -> int | slice | EllipsisType:
    if part == "...":
        return Ellipsis
    if not part:
        raise ValueError(f"bad index {part!r} in [{body}]: empty index")
    fields = part.split(":")
    if len(fields) == 1:
        return _parse_int(part, part, body)
    if len(fields) > 3:
        raise ValueError(f"bad index {part!r} in [{body}]: too many ':'")
    start, stop, *step = (_parse_int(field, part, body) for field in fields)
    if step and step[0] == 0:
        raise ValueError(f"bad index {part!r} in [{body}]: slice step cannot be zero")
    return slice(start, stop, *step)


def parse_slice(text: str) -> tuple:
    """Parse index text such as '1, 2:5' or '..., -1' (brackets optional) into a tuple for indexing."""
    body = text.strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1].strip()
    parts = [part.strip() for part in body.split(",")]
    if len(parts) > 1 and not parts[-1]:
        parts.pop()  # a trailing comma, as in arr[0,]
    index = tuple(_parse_part(part, body) for part in parts)
    if index.count(Ellipsis) > 1:
        raise ValueError(f"bad index in [{body}]: only one '...' allowed")
    return index
