"""Numbers and ranges in command arguments: ``N``, ``A-B``, ``A-`` and ``-B`` (inclusive)."""

from __future__ import annotations

import sys

from msdbg.errors import UsageError

OPEN_END = sys.maxsize


def is_range(word: str) -> bool:
    """Whether ``word`` is written as a number or a range (digits around at most one '-')."""
    return bool(word) and word != "-" and word.count("-") <= 1 and word.replace("-", "").isdecimal() \
        and word.isascii()


def parse_range(word: str, what: str = "step", arg: int | None = None) -> tuple[int, int]:
    """``N``, ``A-B``, ``A-`` or ``-B`` as an inclusive (low, high); UsageError naming ``what`` otherwise."""
    if not is_range(word):
        raise UsageError(f"bad {what} {word!r}: expected N, A-B, A- or -B with whole numbers", arg=arg)
    low, sep, high = word.partition("-")
    bounds = (int(low) if low else 0, int(high) if high else (OPEN_END if sep else int(low)))
    if bounds[0] > bounds[1]:
        raise UsageError(f"bad {what} range {word!r}: {bounds[0]} is above {bounds[1]}", arg=arg)
    return bounds


def numbers_in(args: list[str], known: list[int], what: str) -> list[int]:
    """The ``known`` numbers each argument (N or a range) names; UsageError for one that names none."""
    chosen: list[int] = []
    for index, word in enumerate(args):
        low, high = parse_range(word, what, index)
        named = [n for n in known if low <= n <= high]
        if not named:
            raise UsageError(f"no {what} {word}; existing: {', '.join(map(str, known)) or 'none'}", arg=index)
        chosen.extend(n for n in named if n not in chosen)
    return chosen
