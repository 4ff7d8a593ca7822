"""Numbers typed by the user or found in names, parsed in one place: ASCII digits only, checked against a range.

``str.isdigit()`` accepts '²' and '٣', which ``int()`` then rejects or reads as another number; ``float()``
accepts '1_0', '١' and surrounding spaces. Every number msdbg reads from a command, an option, a file or folder
name goes through here, and a rejection names the thing and the accepted range.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from msdbg.errors import UsageError

_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity)", re.IGNORECASE)
_MAX_DIGITS = 4000  # int() refuses longer strings (CPython's limit is 4300); nobody types such a count


@dataclass(frozen=True)
class Range:
    """The values a number may take: bounds (open or closed, None for none) and whether it is whole."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False

    def __contains__(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return False
        return not self.integer or float(value).is_integer()

    def describe(self) -> str:
        """E.g. 'a whole number >= 1', 'a number between 0 and 100', 'a number in (0, 1)'."""
        kind = "a whole number" if self.integer else "a number"
        low, high = _fmt(self.low), _fmt(self.high)
        if self.low is not None and self.high is not None:
            if not self.low_open and not self.high_open:
                return f"{kind} between {low} and {high}"
            return f"{kind} in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{kind} {'>' if self.low_open else '>='} {low}"
        if self.high is not None:
            return f"{kind} {'<' if self.high_open else '<='} {high}"
        return kind


ANY_NUMBER = Range()
NON_NEGATIVE = Range(low=0)
PERCENTAGE = Range(low=0, high=100)
COUNT = Range(low=0, integer=True)
POSITIVE_COUNT = Range(low=1, integer=True)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def is_ascii_int(text: str) -> bool:
    """Whether ``text`` is a non-negative whole number written with ASCII digits only (a name part, a step)."""
    return text.isascii() and text.isdigit() and len(text) <= _MAX_DIGITS


def parse_int(text: str, what: str, valid: Range = COUNT, *, arg: int | None = None) -> int:
    """``text`` as an int in ``valid``; UsageError '{what}: {text!r} is not {valid}' otherwise."""
    if not _INT.fullmatch(text) or len(text) > _MAX_DIGITS:
        raise UsageError(f"{what}: {text!r} is not {valid.describe()}", arg=arg)
    value = int(text)
    if value not in valid:
        raise UsageError(f"{what}: {text!r} is not {valid.describe()}", arg=arg)
    return value


def parse_float(text: str, what: str, valid: Range = ANY_NUMBER, *, arg: int | None = None) -> float:
    """``text`` as a float in ``valid`` (NaN never); UsageError naming ``what`` and the accepted range otherwise."""
    if text.lstrip("+-").lower() == "nan":
        raise UsageError(f"{what}: NaN is not a usable value; expected {valid.describe()}", arg=arg)
    if not _FLOAT.fullmatch(text):
        raise UsageError(f"{what}: {text!r} is not {valid.describe()}", arg=arg)
    value = float(text)
    if value not in valid:
        raise UsageError(f"{what}: {text!r} is not {valid.describe()}", arg=arg)
    return value
