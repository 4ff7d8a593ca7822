"""One registry of commands, shared by the prompt, script files, ``-c`` and the attach protocol."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from msdbg.errors import UsageError

if TYPE_CHECKING:
    from msdbg.session import Session

Handler = Callable[["Session", list[str]], str]


@dataclass(frozen=True)
class Command:
    """A command: its name, aliases, one-line usage, summary and handler."""

    name: str
    usage: str
    summary: str
    handler: Handler
    aliases: tuple[str, ...] = ()


COMMANDS: dict[str, Command] = {}
_ALIASES: dict[str, str] = {}


def command(name: str, usage: str, summary: str, aliases: tuple[str, ...] = ()) -> Callable[[Handler], Handler]:
    """Register a handler ``(session, args) -> output text``."""

    def register(handler: Handler) -> Handler:
        COMMANDS[name] = Command(name, usage, summary, handler, aliases)
        for alias in aliases:
            _ALIASES[alias] = name
        return handler

    return register


def all_names() -> list[str]:
    """Every command name and alias."""
    return [*COMMANDS, *_ALIASES]


def split_line(line: str) -> list[str]:
    """Split a command line into words; ``#`` starts a comment; raise UsageError on bad quoting."""
    try:
        return shlex.split(line, comments=True)
    except ValueError as exc:
        raise UsageError(f"cannot parse {line.strip()!r}: {exc}") from None


def lookup(word: str) -> Command:
    """The command named or aliased ``word``; raise UsageError with the known names."""
    name = _ALIASES.get(word, word)
    if name not in COMMANDS:
        raise UsageError(f"unknown command {word!r}; known: {', '.join(sorted(COMMANDS))}")
    return COMMANDS[name]


def execute(session: "Session", line: str) -> str:
    """Run one command line against the session and return its output ('' for blank lines)."""
    words = split_line(line)
    if not words:
        return ""
    return lookup(words[0]).handler(session, words[1:])
