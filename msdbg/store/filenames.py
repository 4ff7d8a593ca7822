"""Parse MindSpore tensor dump file names.

Layout (MindSpore 2.x, CPU/GPU/Ascend e2e dump):
``{OpType}.{op_name}.{task_id}.{stream_id}.{timestamp}.{input|output}.{slot}.{format}.{dtype}.npy``; MindSpore 2.0
writes no ``{dtype}`` field (``dtype`` is then "": the .npy header says it) and op names without their scope.
``op_name`` is the node's full name with ``/`` replaced by ``_`` and may itself contain dots
(e.g. ``Parameter.moment1_fc1_weight`` has none, but user scopes can), so the name is parsed
from both ends.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_TAIL = re.compile(
    r"\.(?P<task>\d+)\.(?P<stream>\d+)\.(?P<timestamp>\d+)\.(?P<io>input|output)\.(?P<slot>\d+)"
    r"\.(?P<format>[^.]+)(?:\.(?P<dtype>[^.]+))?\.npy\Z",
    re.ASCII,  # \d: ASCII digits only ('٣' is a Unicode digit int() reads as 3)
)
_IO = ("input", "output")


class TensorFileName(NamedTuple):
    """The fields encoded in one dump file name (a tuple: a step lists hundreds, and a frozen dataclass takes
    several times as long to make)."""

    op_type: str
    op_name: str
    task_id: int
    stream_id: int
    timestamp: int
    io: str
    slot: int
    format: str
    dtype: str

    @property
    def is_parameter(self) -> bool:
        """True for the ``Parameter.*`` files MindSpore writes for each graph parameter."""
        return self.op_type == "Parameter"


def parse_tensor_filename(name: str) -> TensorFileName | None:
    """Return the fields of a tensor dump file name, or None if ``name`` is not one."""
    fields = _split_with_dtype(name)
    if fields is None:  # the regex: MindSpore 2.0's names without a dtype field, and anything odd
        match = _TAIL.search(name)
        if not match:
            return None
        fields = (name[: match.start()], *match.groups())
    head, task, stream, timestamp, io, slot, layout, dtype = fields
    op_type, sep, op_name = head.partition(".")
    if not sep or not op_type or not op_name:
        return None
    return TensorFileName(op_type, op_name, int(task), int(stream), int(timestamp), io, int(slot), layout, dtype or "")


def _split_with_dtype(name: str) -> list[str] | None:
    """The fields of a name with every field of the MindSpore 2.x layout, split on dots (a step lists hundreds of
    files; this is several times faster than the regex, which takes the same reading first); None otherwise."""
    fields = name.rsplit(".", 8)
    if len(fields) != 9 or fields[8] != "npy" or fields[4] not in _IO or not fields[6] or not fields[7]:
        return None
    _, task, stream, timestamp, _, slot, _, _, _ = fields
    digits = task + stream + timestamp + slot  # ASCII digits only, as the regex's \d
    if not (task and stream and timestamp and slot and digits.isascii() and digits.isdigit()):
        return None
    return fields[:8]


def dump_op_name(full_name: str) -> str:
    """The op name MindSpore writes into file names for a node full name."""
    return full_name.replace("/", "_")


def dump_param_name(param_name: str) -> str:
    """The op name MindSpore writes into ``Parameter.*`` file names for a parameter name."""
    return param_name.replace(".", "_").replace("/", "_")
