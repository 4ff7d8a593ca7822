"""MindSpore's iteration syntax, as in the dump config's ``iteration`` field: ``all`` or ``0|5-8|100-120``."""

from __future__ import annotations

from dataclasses import dataclass

from msdbg.errors import UsageError
from msdbg.numeric import is_ascii_int


@dataclass(frozen=True)
class StepSpec:
    """A set of iterations: inclusive ranges, or every iteration when ``ranges`` is None."""

    ranges: tuple[tuple[int, int], ...] | None

    def __contains__(self, iteration: int) -> bool:
        return self.ranges is None or any(low <= iteration <= high for low, high in self.ranges)


def parse_step_spec(text: str) -> StepSpec:
    """Parse ``all`` or ``N|A-B|...``; raise UsageError naming the bad part."""
    if text.strip() == "all":
        return StepSpec(None)
    ranges = []
    for part in text.split("|"):
        low, sep, high = part.strip().partition("-")
        if not is_ascii_int(low) or (sep and not is_ascii_int(high)):
            raise UsageError(f"--steps {text!r}: bad part {part!r}; expected 'all' or e.g. '0|5-8|100-120'")
        start, end = int(low), int(high) if sep else int(low)
        if start > end:
            raise UsageError(f"--steps {text!r}: range {part!r} runs backwards")
        ranges.append((start, end))
    return StepSpec(tuple(ranges))
