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
from dataclasses import dataclass

_TAIL = re.compile(
    r"\.(?P<task>\d+)\.(?P<stream>\d+)\.(?P<timestamp>\d+)\.(?P<io>input|output)\.(?P<slot>\d+)"
    r"\.(?P<format>[^.]+)(?:\.(?P<dtype>[^.]+))?\.npy$",
    re.ASCII,  # \d: ASCII digits only ('٣' is a Unicode digit int() reads as 3)
)


@dataclass(frozen=True)
class TensorFileName:
    """The fields encoded in one dump file name."""

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
    match = _TAIL.search(name)
    if not match:
        return None
    head = name[: match.start()]
    op_type, sep, op_name = head.partition(".")
    if not sep or not op_type or not op_name:
        return None
    task, stream, timestamp, io, slot, layout, dtype = match.groups()  # one call: a step lists many files
    return TensorFileName(op_type, op_name, int(task), int(stream), int(timestamp), io, int(slot), layout, dtype or "")


def dump_op_name(full_name: str) -> str:
    """The op name MindSpore writes into file names for a node full name."""
    return full_name.replace("/", "_")


def dump_param_name(param_name: str) -> str:
    """The op name MindSpore writes into ``Parameter.*`` file names for a parameter name."""
    return param_name.replace(".", "_").replace("/", "_")
