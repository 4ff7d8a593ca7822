"""How users name tensors in commands.

- ``fc1.weight``: a parameter as the user wrote it (its value after the step's update);
- ``grad:fc1.weight``: the gradient the optimizer received for that parameter;
- ``Default/network-WithLossCell/_backbone-Net/fc1-Dense/MatMul-op0``: a node's output 0, or any unique suffix of
  that full name at a ``/`` boundary (``fc1-Dense/MatMul-op0``, ``Log-op0``);
- ``NODE:output:1``, ``NODE:input:0``: another slot;
- a trailing ``[numpy-slice]`` selects part of the tensor (``print fc1.weight[0, :3]``).
"""

from __future__ import annotations

import difflib

from msdbg.errors import UsageError
from msdbg.store.dumpdir import TensorEntry

GRAD_PREFIX = "grad:"


def split_slice(text: str) -> tuple[str, str | None]:
    """``'fc1.weight[0, :3]'`` -> ``('fc1.weight', '0, :3')``."""
    if text.endswith("]") and "[" in text:
        at = text.index("[")
        return text[:at], text[at + 1:-1]
    return text, None


def aliases(entry: TensorEntry) -> list[str]:
    """Every name that addresses this tensor exactly."""
    names = [entry.label]
    if entry.file.is_parameter and entry.param:
        names.append(entry.param)
    elif entry.category == "gradient" and entry.param and entry.io == "output" and entry.slot == 0:
        names.append(GRAD_PREFIX + entry.param)
    if not entry.file.is_parameter and entry.io == "output" and entry.slot == 0:
        names.append(entry.node)
    return names


def name_index(entries: list[TensorEntry]) -> dict[str, TensorEntry]:
    """Exact names of a step's tensors (what completion offers)."""
    index: dict[str, TensorEntry] = {}
    for entry in entries:
        for alias in aliases(entry):
            index.setdefault(alias, entry)
    return index


def resolve(text: str, entries: list[TensorEntry]) -> TensorEntry:
    """The tensor ``text`` names in this step; UsageError with suggestions when unknown or ambiguous."""
    index = name_index(entries)
    if text in index:
        return index[text]
    node, io, slot = _parse_label(text)
    matches = [e for e in entries if not e.file.is_parameter and e.io == io and e.slot == slot
               and e.node.endswith("/" + node)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        shown = ", ".join(sorted(e.node for e in matches)[:5])
        raise UsageError(f"tensor name {text!r} is ambiguous: {shown}{' ...' if len(matches) > 5 else ''}")
    raise UsageError(f"no tensor {text!r} at this step{_suggest(text, index)}")


def _parse_label(text: str) -> tuple[str, str, int]:
    """``NODE:io:slot`` or ``NODE`` (output 0)."""
    parts = text.rsplit(":", 2)
    if len(parts) == 3 and parts[1] in ("input", "output") and parts[2].isdigit():
        return parts[0], parts[1], int(parts[2])
    return text, "output", 0


def _suggest(text: str, index: dict[str, TensorEntry]) -> str:
    short = {name.rsplit("/", 1)[-1]: name for name in index}
    close = difflib.get_close_matches(text, list(index), n=3, cutoff=0.6)
    close += [short[s] for s in difflib.get_close_matches(text, list(short), n=3, cutoff=0.6) if short[s] not in close]
    return f"; did you mean: {', '.join(close[:3])}?" if close else ""
