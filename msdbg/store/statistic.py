"""Read MindSpore's statistic dump: the ``statistic.csv`` of one iteration folder.

With ``saved_data: "statistic"`` (GPU host statistics, Ascend O0/O1; CPU cannot) MindSpore writes one row per
tensor to ``{path}/rank_{r}/{net_name}/{graph_id}/{iteration}/statistic.csv`` instead of ``.npy`` files. The layout
follows the "Dump in CPU/GPU Backend" / "Introduction to Data Object Directory and Data File" sections and the
``statistic_category`` list of https://www.mindspore.cn/tutorials/en/r2.6.0/debug/dump.html (source:
mindspore-ai/docs tutorials/source_en/debug/dump.md), checked against the MindSpore sources that write it:
mindspore/ccsrc/debug/utils.h (CsvHeaderUtil::SetStatCsvHeader, header_map), debug/data_dump/tensor_stat_dump.cc
(TensorStatDump::DumpTensorStatsToFile), debug/data_dump/csv_writer.h, debug/debugger/tensor_summary.cc
(TensorStatisticsSingleThread) and debug/debug_services.h (TensorStat::UpdateHeaderItemMap):

* header ``Op Type,Op Name,Task ID,Stream ID,Timestamp,IO,Slot,Data Size,Data Type,Shape`` then one column per
  ``statistic_category`` entry, in config order (``Max Value``, ``Min Value``, ``Avg Value``, ``Count``,
  ``Negative Zero Count``, ``Positive Zero Count``, ``Nan Count``, ``Negative Inf Count``, ``Positive Inf Count``,
  ``Zero Count``, ``L2Norm Value``, ``MD5``/``SHA1``). Older versions wrote a fixed header spelling ``NaN Count``
  and ``L2 Value``; names are matched case-insensitively and both spellings are read.
* Each row ends with an empty extra field (the writer closes a row with ``WriteToCsv("", true)``); older versions
  did not. Shape is quoted, ``"(16,8)"``; IO is ``input``/``output``; Op Name is kept as written (recent versions
  write the full scope name with ``/``, older ones the short or ``_``-joined name).
* Values are C++ ``ostream <<`` doubles (6 significant digits, ``nan``/``-nan``/``inf``), ``null`` where one was not
  computed. Max/Min/Avg/L2 cover every element, so a NaN makes them ``nan`` and an Inf makes them infinite.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from typing import Callable

from msdbg.engine.stats import TensorStats
from msdbg.store.npyfile import TensorFileError

_REQUIRED = ("Op Type", "Op Name", "Task ID", "Stream ID", "Timestamp", "IO", "Slot", "Data Type", "Shape")
# Statistic columns (lower case) -> key in the parsed row; values are floats for _FLOATS, the digest text for
# 'digest', counts otherwise.
_STAT_COLUMNS = {
    "max value": "max", "min value": "min", "avg value": "avg", "count": "count",
    "negative zero count": "neg", "positive zero count": "pos", "nan count": "nan",
    "negative inf count": "neg_inf", "positive inf count": "pos_inf", "zero count": "zero",
    "l2norm value": "l2", "l2 value": "l2", "md5": "digest", "sha1": "digest",
}
_FLOATS = frozenset({"max", "min", "avg", "l2"})
_ANSWERS = ("nan", "pos_inf", "neg_inf", "zero", "neg", "pos", "min", "max", "sum", "sq_sum", "finite_count")


@dataclass(frozen=True)
class StatisticRow:
    """One row of statistic.csv: the tensor's identity and what the row says about its values."""

    op_type: str
    op_name: str  # as written in the CSV
    task_id: int
    stream_id: int
    timestamp: int
    io: str  # 'input' | 'output'
    slot: int
    data_type: str  # as written, e.g. 'float32'
    shape: tuple[int, ...]
    stats: TensorStats  # fields the row cannot answer stay None
    available: frozenset[str]  # stats.STAT_NAMES this row answers: exactly the fields filled in, plus 'nonfinite'
    digest: str | None  # the MD5 or SHA1 column, when present


def read_statistic_csv(path: str) -> list[StatisticRow]:
    """All rows of a statistic.csv; raises TensorFileError naming the file and line when it is malformed."""
    if os.path.exists(path) and not os.path.isfile(path):  # a FIFO would block the read
        raise TensorFileError(f"statistic file {path}: not a regular file; skipped")
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        text = data.decode("utf-8-sig")
    except OSError as exc:
        raise TensorFileError(f"statistic file {path}: cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise _error(path, data.count(b"\n", 0, exc.start) + 1, "not UTF-8 text") from None
    reader = csv.reader(io.StringIO(text))
    header: dict[str, int] | None = None
    names: list[str] = []
    rows: list[StatisticRow] = []
    try:
        for fields in reader:
            if not any(field.strip() for field in fields):
                continue  # blank line
            if header is None:
                names = [name.strip() for name in fields]
                header = {name.lower(): i for i, name in enumerate(names)}
                missing = [name for name in _REQUIRED if name.lower() not in header]
                if missing:
                    raise _error(path, reader.line_num, f"header lacks column(s) {', '.join(missing)}")
                continue
            if len(fields) == len(names) + 1 and not fields[-1].strip():
                fields = fields[:-1]  # MindSpore's trailing separator
            elif len(fields) != len(names):
                raise _error(path, reader.line_num, f"{len(fields)} fields, the header has {len(names)}")
            try:
                rows.append(_row(fields, header, names))
            except ValueError as exc:
                raise _error(path, reader.line_num, str(exc)) from None
    except csv.Error as exc:
        raise _error(path, reader.line_num, f"not valid CSV ({exc})") from None
    if rows and not text.rstrip(" \t").endswith(("\n", "\r")):
        raise _error(path, reader.line_num, "truncated: the last row has no end of line")
    return rows


def _error(path: str, line: int, message: str) -> TensorFileError:
    return TensorFileError(f"statistic file {path}, line {line}: {message}")


def _row(fields: list[str], header: dict[str, int], names: list[str]) -> StatisticRow:
    def cell(column: str) -> str:
        return fields[header[column.lower()]].strip()

    def number(column: str, parse: Callable[[str], object], kind: str):
        try:
            return parse(cell(column))
        except ValueError:
            raise ValueError(f"{names[header[column.lower()]]} {cell(column)!r} is not {kind}") from None

    def integer(column: str) -> int:
        return number(column, int, "an integer")

    got: dict[str, float | int | str | None] = {}
    for column, key in _STAT_COLUMNS.items():
        if column in header:
            if key == "digest":
                got[key] = cell(column) or None
            elif key in _FLOATS:
                got[key] = number(column, _float, "a number")
            else:
                got[key] = integer(column)
    io_name = cell("IO")
    if io_name not in ("input", "output"):
        raise ValueError(f"IO {io_name!r} is neither 'input' nor 'output'")
    shape = _shape(cell("Shape"))
    stats = _stats(got, cell("Data Type"), shape)
    available = {name for name in _ANSWERS if getattr(stats, name) is not None}
    if stats.nonfinite_count is not None:
        available.add("nonfinite")
    return StatisticRow(cell("Op Type"), cell("Op Name"), integer("Task ID"), integer("Stream ID"),
                        integer("Timestamp"), io_name, integer("Slot"), cell("Data Type"), shape, stats,
                        frozenset(available), got.get("digest"))


def _shape(text: str) -> tuple[int, ...]:
    """``(16,8)`` as MindSpore writes it; ``16,8``, ``[16, 8]`` and ``(16,)`` are accepted too."""
    inner = text.strip().strip("()[]").strip()
    parts = inner.split(",") if inner else []
    if parts and not parts[-1].strip():
        parts.pop()
    try:
        return tuple(int(part) for part in parts)
    except ValueError:
        raise ValueError(f"Shape {text!r} is not a list of integers") from None


def _stats(got: dict, dtype: str, shape: tuple[int, ...]) -> TensorStats:
    """TensorStats (finite-element conventions, see msdbg.engine.stats) from MindSpore's all-element values."""
    size = got["count"] if "count" in got else math.prod(shape)
    stats = TensorStats(size=size, dtype=dtype, shape=shape, nan=got.get("nan"), pos_inf=got.get("pos_inf"),
                        neg_inf=got.get("neg_inf"), zero=got.get("zero"))
    # "Negative/Positive Zero Count" count the elements below/above zero ("less then zero" in the docs), -Inf and
    # +Inf included (tensor_summary.cc tests signbit, not finiteness), so msdbg's finite neg/pos need the inf counts.
    if "neg" in got and stats.neg_inf is not None:
        stats.neg = got["neg"] - stats.neg_inf
    if "pos" in got and stats.pos_inf is not None:
        stats.pos = got["pos"] - stats.pos_inf
    nonfinite = stats.nonfinite_count
    if "count" in got and nonfinite is not None:
        stats.finite_count = size - nonfinite
    # msdbg's min/max are over finite elements. A NaN makes MindSpore's max/min nan, an Inf makes them infinite: the
    # bound then cannot be judged from the CSV (the nonfinite counts still report the problem). With a NaN counted,
    # even a finite value is not trusted: the multi-threaded reduction drops chunks whose max/min is NaN. An empty
    # tensor leaves the +-DBL_MAX start values.
    if size and not got.get("nan"):
        stats.max, stats.min = _finite(got.get("max")), _finite(got.get("min"))
    # Avg and L2 also cover every element, so they are finite only when no element is NaN/Inf; then
    # sum = avg * size and sq_sum = l2 ** 2 are the finite-element sums msdbg means. (Over 10,000 elements MindSpore's
    # host avg is reduced per thread and tensor_summary.cc weighs the chunks by an integer division, so sum is only
    # as exact as the avg it wrote.)
    if not nonfinite:
        avg, l2 = _finite(got.get("avg")), _finite(got.get("l2"))
        stats.sum = None if avg is None else avg * size
        stats.sq_sum = None if l2 is None else l2 * l2
    return stats


def _float(text: str) -> float | None:
    """A C++ ``ostream`` double (``nan``, ``-nan``, ``inf`` included); ``null`` for a value not computed."""
    return None if text.lower() == "null" else float(text)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
