"""Did-you-mean: the known words closest to a mistyped one (difflib), for commands, conditions and tensors."""

from __future__ import annotations

import difflib
from typing import Iterable

CUTOFF = 0.6


def close_matches(word: str, known: Iterable[str], count: int = 3) -> list[str]:
    """Up to ``count`` known words closest to ``word``, best first."""
    return difflib.get_close_matches(word, list(known), n=count, cutoff=CUTOFF)


def unknown(kind: str, word: str, known: Iterable[str], *, label: str = "accepted",
            shown: Iterable[str] | None = None, canonical: dict[str, str] | None = None) -> str:
    """``unknown KIND 'WORD'; did you mean X? accepted: ...``: the closest known words when some are close, then
    the ``shown`` words (default: every known one) after ``label``. ``canonical`` maps aliases to the name
    suggested for them."""
    known = sorted(known)
    canonical = canonical or {}
    close = list(dict.fromkeys(canonical.get(w, w) for w in close_matches(word, known, 4)))[:2]
    accepted = f"{label}: {', '.join(sorted(shown) if shown is not None else known)}"
    if close:
        return f"unknown {kind} {word!r}; did you mean {' or '.join(close)}? {accepted}"
    return f"unknown {kind} {word!r}; {accepted}"
