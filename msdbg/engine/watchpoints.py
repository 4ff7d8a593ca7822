"""Watchpoints: a condition, its parameter values and a target pattern; and the list of them."""

from __future__ import annotations

import fnmatch
import math
import re
from dataclasses import dataclass, field

from msdbg.engine.conditions import CONDITIONS, Condition
from msdbg.errors import UsageError
from msdbg.suggest import unknown
from msdbg.store.dumpdir import TensorEntry


@dataclass(frozen=True)
class TargetPattern:
    """``on PATTERN``: a glob by default, a regular expression after ``re:``.

    It matches a tensor when it matches the node's full name, its short name (last path part),
    its parameter name, its op type, or any scope prefix of its full name.
    """

    text: str
    regex: re.Pattern[str] | None = None
    # (node, op type, param) -> matched: every step of a graph names the same tensors, so each is tried once
    _known: dict[tuple[str, str, str | None], bool] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def parse(cls, text: str) -> "TargetPattern":
        if text.startswith("re:"):
            try:
                return cls(text, re.compile(text[3:]))
            except re.error as exc:
                raise UsageError(f"bad regular expression {text[3:]!r}: {exc}") from None
        return cls(text)

    def matches(self, entry: TensorEntry) -> bool:
        key = (entry.node, entry.op_type, entry.param)
        known = self._known.get(key)
        if known is None:
            known = self._known[key] = any(self._match(candidate) for candidate in _candidates(entry))
        return known

    def _match(self, candidate: str) -> bool:
        if self.regex is not None:
            return self.regex.search(candidate) is not None
        return fnmatch.fnmatchcase(candidate, self.text)


def _candidates(entry: TensorEntry) -> list[str]:
    names = [entry.node, entry.node.rsplit("/", 1)[-1], entry.op_type]
    if entry.param:
        names.append(entry.param)
    parts = entry.node.split("/")
    names.extend("/".join(parts[:i]) for i in range(1, len(parts)))
    names.extend(parts[:-1])
    return names


@dataclass
class Watchpoint:
    """A numbered watchpoint."""

    number: int
    condition: Condition
    params: dict[str, float]
    target: TargetPattern | None = None
    enabled: bool = True

    def watches(self, entry: TensorEntry) -> bool:
        """True when this watchpoint evaluates the given tensor."""
        if not self.enabled or not self.condition.applies_to(entry.category):
            return False
        return self.target is None or self.target.matches(entry)

    def describe(self) -> str:
        params = " ".join(f"{k}={_fmt(v)}" for k, v in self.params.items())
        target = f" on {self.target.text}" if self.target else ""
        state = "" if self.enabled else "  (disabled)"
        return f"{self.number}: {self.condition.name}{' ' + params if params else ''}{target}{state}"


def unknown_condition(name: str) -> str:
    """'unknown condition X' with the closest names, or every accepted name when none is close."""
    return unknown("condition", name, CONDITIONS)


def _fmt(value: float) -> str:
    return f"{value:g}"


def _parse_value(condition: Condition, name: str, raw: str, arg: int | None) -> float:
    if condition.param(name) is None:
        accepted = ", ".join(p.name for p in condition.params) or "none"
        raise UsageError(f"{condition.name} has no parameter {name!r}; accepted: {accepted}", arg=arg)
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"{condition.name} {name}={raw!r}: not a number", arg=arg) from None
    if math.isnan(value):
        raise UsageError(f"{condition.name} {name}: NaN is not a usable bound", arg=arg)
    return value


def _check_values(condition: Condition, values: dict[str, float]) -> None:
    """Cross-parameter rules: range bounds come in pairs, tolerances are non-negative, beta in (0, 1)."""
    start, end = values.get("range_start_inclusive"), values.get("range_end_inclusive")
    if any(name.startswith("range_percentage") for name in values) and (start is None or end is None):
        raise UsageError(f"{condition.name}: range_percentage_lt/_gt need both range_start_inclusive "
                         "and range_end_inclusive")
    if start is not None and end is not None and start > end:
        raise UsageError(f"{condition.name}: range_start_inclusive {start:g} is above range_end_inclusive {end:g}")
    if (start is not None or end is not None) and not any(n.startswith("range_percentage") for n in values):
        raise UsageError(f"{condition.name}: a range needs range_percentage_lt or range_percentage_gt")
    for name in ("rtol", "atol", "threshold", "warmup", "steps_ge", "consecutive_skips_ge", "skipped_percentage_gt"):
        if values.get(name, 0.0) < 0:
            raise UsageError(f"{condition.name} {name}: must be >= 0")
    if "beta" in values and not 0.0 < values["beta"] < 1.0:
        raise UsageError(f"{condition.name} beta: must be between 0 and 1")
    if condition.bounds and not any(p.name in values for p in condition.bounds) and condition.kind == "bounds":
        accepted = ", ".join(p.name for p in condition.bounds)
        raise UsageError(f"{condition.name} needs at least one of: {accepted}")


@dataclass
class WatchpointList:
    """The session's watchpoints, numbered from 1 as gdb does."""

    items: dict[int, Watchpoint] = field(default_factory=dict)
    _next: int = 1

    def add(self, condition_name: str, params: dict[str, str], target: str | None,
            positions: dict[str, int] | None = None) -> Watchpoint:
        """Validate and create a watchpoint; raises UsageError naming what is accepted.

        ``positions`` maps a parameter name (and '' for the condition) to its argument index, so an error
        can point at the word to blame.
        """
        positions = positions or {}
        condition = CONDITIONS.get(condition_name)
        if condition is None:
            raise UsageError(unknown_condition(condition_name), arg=positions.get(""))
        if not condition.available:
            raise UsageError(f"{condition.name} is not available here: {condition.unavailable_reason}",
                             arg=positions.get(""))
        values = {name: _parse_value(condition, name, raw, positions.get(name)) for name, raw in params.items()}
        values = condition.defaults(values)
        try:
            _check_values(condition, values)
        except UsageError as exc:  # a rule between parameters: blame the condition word
            exc.arg = positions.get("")
            raise
        watchpoint = Watchpoint(self._next, condition, values, TargetPattern.parse(target) if target else None)
        self.items[self._next] = watchpoint
        self._next += 1
        return watchpoint

    def get(self, number: int) -> Watchpoint:
        if number not in self.items:
            known = ", ".join(str(n) for n in self.items) or "none"
            raise UsageError(f"no watchpoint {number}; existing: {known}")
        return self.items[number]

    def active(self) -> list[Watchpoint]:
        return [w for w in self.items.values() if w.enabled]
