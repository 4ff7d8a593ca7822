"""How users name tensors in commands.

- ``fc1.weight``: a parameter as the user wrote it (its value after the step's update);
- ``grad:fc1.weight``: the gradient the optimizer received for that parameter;
- ``Default/network-WithLossCell/_backbone-Net/fc1-Dense/MatMul-op0``: a node's output 0, or any unique suffix of
  that full name at a ``/`` boundary (``fc1-Dense/MatMul-op0``, ``Log-op0``);
- ``NODE:output:1``, ``NODE:input:0``: another slot;
- a trailing ``[numpy-slice]`` selects part of the tensor (``print fc1.weight[0, :3]``).
"""

from __future__ import annotations

import bisect
from typing import Iterable

from msdbg.errors import UsageError
from msdbg.suggest import close_matches
from msdbg.store.dumpdir import TensorEntry

GRAD_PREFIX = "grad:"
SUGGESTION_NEIGHBOURS = 50


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


def _exact_names(entries: list[TensorEntry]) -> dict[str, TensorEntry]:
    """Every exact name of a step's tensors; the first tensor keeps a name two would share."""
    index: dict[str, TensorEntry] = {}
    for entry in entries:
        for alias in aliases(entry):
            index.setdefault(alias, entry)
    return index


class StepNames:
    """The names of one step's tensors, indexed once per step listing (``Session.current_derived(StepNames)``)."""

    def __init__(self, entries: list[TensorEntry]):
        self._exact = _exact_names(entries)
        self._ops_by_last_part = _ops_by_last_part(entries)
        self._sorted = sorted(self._exact)
        self._last_parts, self._names_by_last_part = _sorted_by_last_part(self._exact)

    def resolve(self, text: str) -> TensorEntry:
        """The tensor ``text`` names; UsageError with suggestions when unknown or ambiguous."""
        if text in self._exact:
            return self._exact[text]
        node, io, slot = _parse_label(text)
        matches = [e for e in self._ops_by_last_part.get(_last_part(node), [])
                   if e.io == io and e.slot == slot and e.node.endswith("/" + node)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            shown = ", ".join(sorted(e.node for e in matches)[:5])
            raise UsageError(f"tensor name {text!r} is ambiguous: {shown}{' ...' if len(matches) > 5 else ''}")
        raise UsageError(f"no tensor {text!r} at this step{_suggestion(text, self._neighbours(text))}")

    def complete(self, prefix: str, limit: int) -> list[str]:
        """Up to ``limit`` names that start with ``prefix``, then names whose last ``/`` part does, each sorted."""
        found = _starting_with(self._sorted, self._sorted, prefix, limit)
        if len(found) < limit:  # then found holds every name that starts with prefix
            by_last_part = _starting_with(self._last_parts, self._names_by_last_part, prefix, limit + len(found))
            found += [name for name in by_last_part if not name.startswith(prefix)]
        return found[:limit]

    def _neighbours(self, text: str) -> list[str]:
        """The names sorted next to ``text``, and those whose last part is sorted next to its last part.

        Suggestions for a mistyped name come from these only: comparing it with every name of a large step (100k+)
        took seconds.
        """
        near = _around(self._sorted, self._sorted, text) + _around(self._last_parts, self._names_by_last_part,
                                                                    _last_part(text))
        return list(dict.fromkeys(near))


def _ops_by_last_part(entries: list[TensorEntry]) -> dict[str, list[TensorEntry]]:
    """Op tensors by the last ``/`` part of their node's full name (what a ``/`` suffix of it ends with)."""
    groups: dict[str, list[TensorEntry]] = {}
    for entry in entries:
        if not entry.file.is_parameter:
            groups.setdefault(_last_part(entry.node), []).append(entry)
    return groups


def _sorted_by_last_part(names: Iterable[str]) -> tuple[list[str], list[str]]:
    """The last ``/`` parts of the names that have several parts, sorted, and those names in the same order."""
    pairs = sorted((_last_part(name), name) for name in names if "/" in name)
    return [last for last, _ in pairs], [name for _, name in pairs]


def _around(keys: list[str], names: list[str], key: str) -> list[str]:
    """``names[i]`` for the SUGGESTION_NEIGHBOURS sorted ``keys`` on each side of where ``key`` would be."""
    at = bisect.bisect_left(keys, key)
    return names[max(0, at - SUGGESTION_NEIGHBOURS):at + SUGGESTION_NEIGHBOURS]


def _starting_with(keys: list[str], names: list[str], prefix: str, limit: int) -> list[str]:
    """``names[i]`` for the first ``limit`` of the sorted ``keys`` that start with ``prefix``."""
    start = bisect.bisect_left(keys, prefix)
    end = start
    while end < len(keys) and end - start < limit and keys[end].startswith(prefix):
        end += 1
    return names[start:end]


def _last_part(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _parse_label(text: str) -> tuple[str, str, int]:
    """``NODE:io:slot`` or ``NODE`` (output 0)."""
    parts = text.rsplit(":", 2)
    if len(parts) == 3 and parts[1] in ("input", "output") and parts[2].isdigit():
        return parts[0], parts[1], int(parts[2])
    return text, "output", 0


def _suggestion(text: str, names: list[str]) -> str:
    short = {_last_part(name): name for name in names}
    close = close_matches(text, names)
    close += [short[s] for s in close_matches(text, short) if short[s] not in close]
    return f"; did you mean: {', '.join(close[:3])}?" if close else ""
