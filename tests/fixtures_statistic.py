"""Build statistic-only MindSpore dump trees (``saved_data: "statistic"``) for tests.

Layout followed exactly: https://www.mindspore.cn/tutorials/en/r2.6.0/debug/dump.html, "Dump in CPU/GPU Backend" ->
"Introduction to Data Object Directory and Data File" (``{path}/rank_{rank_id}/{net_name}/{graph_id}/
{iteration_id}/statistic.csv``; the columns Op Type, Op Name, Task ID, Stream ID, Timestamp, IO, Slot, Data Size,
Data Type, Shape "and statistics items configured by the user") and the ``statistic_category`` option list. The
byte-level details the page leaves open come from the MindSpore sources that write the file:
mindspore/ccsrc/debug/utils.h (header_map: config name -> column name, e.g. "nan count" -> "Nan Count"),
debug/data_dump/tensor_stat_dump.cc + csv_writer.h (fields joined by ",", shape as ``"(d0,d1)"``, each row closed by
an empty field so it ends in ``,\\n``) and debug/debugger/tensor_summary.cc (what each statistic counts: max/min/avg/
L2 over all elements, so NaN/Inf propagate; "negative/positive zero count" are elements < 0 / > 0, Inf included;
doubles printed by ``ostream <<``, i.e. ``%g``). Only statistic.csv is written: no graphs/ or execution_order/.
"""

from __future__ import annotations

import hashlib
import math
import sys
from pathlib import Path

import numpy as np

COMMON_HEADER = "Op Type,Op Name,Task ID,Stream ID,Timestamp,IO,Slot,Data Size,Data Type,Shape"
# statistic_category config names (docs) -> column names (debug/utils.h header_map).
COLUMNS = {
    "max": "Max Value", "min": "Min Value", "avg": "Avg Value", "count": "Count",
    "negative zero count": "Negative Zero Count", "positive zero count": "Positive Zero Count",
    "nan count": "Nan Count", "negative inf count": "Negative Inf Count", "positive inf count": "Positive Inf Count",
    "zero count": "Zero Count", "l2norm": "L2Norm Value", "md5": "MD5",
}
ALL_CATEGORIES = list(COLUMNS)
BASE_TIMESTAMP = 1_700_000_000_000_000  # microseconds, as Common::GetTimeStamp() writes them


def write_statistic_dump(root, rows_per_iteration: dict[int, list[dict]], *, categories: list[str], rank: int = 0,
                         net: str = "Net", graph: int = 0) -> Path:
    """Write ``root/rank_{rank}/{net}/{graph}/{iteration}/statistic.csv`` for each iteration; return ``root``.

    A row dict has op_type, op_name, io, slot and array (values computed from it with NumPy), and optionally
    data_type (default: the array's dtype name), shape (default: the array's), task_id, stream_id, timestamp.
    """
    unknown = [name for name in categories if name not in COLUMNS]
    if unknown:
        raise ValueError(f"unknown statistic_category {unknown}; documented: {ALL_CATEGORIES}")
    root = Path(root)
    header = COMMON_HEADER + "".join("," + COLUMNS[name] for name in categories) + "\n"
    for iteration, rows in rows_per_iteration.items():
        folder = root / f"rank_{rank}" / net / str(graph) / str(iteration)
        folder.mkdir(parents=True, exist_ok=True)
        lines = [header]
        for index, row in enumerate(rows):
            array = np.asarray(row["array"])
            shape = tuple(row.get("shape", array.shape))
            common = [row["op_type"], row["op_name"], str(row.get("task_id", 0)), str(row.get("stream_id", 0)),
                      str(row.get("timestamp", BASE_TIMESTAMP + index)), row["io"], str(row["slot"]),
                      str(array.nbytes), row.get("data_type", array.dtype.name),
                      '"(' + ",".join(str(dim) for dim in shape) + ')"']
            values = statistic_values(array)
            lines.append(",".join(common + [values[name] for name in categories]) + ",\n")
        (folder / "statistic.csv").write_text("".join(lines), encoding="utf-8", newline="")
    return root


def statistic_values(array: np.ndarray) -> dict[str, str]:
    """Every statistic_category value of ``array`` as MindSpore's host statistics write it."""
    values = np.asarray(array, dtype=np.float64).ravel()
    with np.errstate(all="ignore"):
        if values.size:  # np.max/np.min/np.mean propagate NaN and include Inf, as MindSpore's do
            top, bottom, avg = float(np.max(values)), float(np.min(values)), float(np.mean(values))
        else:  # TensorSummary's start values
            top, bottom, avg = -sys.float_info.max, sys.float_info.max, 0.0
        l2 = math.sqrt(float(np.dot(values, values)))
    counts = {  # < 0 and > 0 include -Inf and +Inf; NaN is in neither
        "count": values.size, "negative zero count": np.count_nonzero(values < 0),
        "positive zero count": np.count_nonzero(values > 0), "nan count": np.count_nonzero(np.isnan(values)),
        "negative inf count": np.count_nonzero(values == -np.inf),
        "positive inf count": np.count_nonzero(values == np.inf), "zero count": np.count_nonzero(values == 0),
    }
    text = {name: str(int(count)) for name, count in counts.items()}
    text.update(max=f"{top:g}", min=f"{bottom:g}", avg=f"{avg:g}", l2norm=f"{l2:g}",
                md5=hashlib.md5(np.ascontiguousarray(array).tobytes()).hexdigest())
    return text
