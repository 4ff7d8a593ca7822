"""One registry of commands, shared by the prompt, script files, ``-c`` and the attach protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from msdbg.errors import UsageError
from msdbg.suggest import unknown

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


def tokenize(line: str) -> list[tuple[str, int]]:
    """Split a command line into (word, 1-based column) pairs, shell-style: quotes group words, ``\\``
    escapes, ``#`` at the start of a word begins a comment. Raise UsageError on an unterminated quote."""
    words: list[tuple[str, int]] = []
    at, end = 0, len(line)
    while at < end:
        if line[at].isspace():
            at += 1
            continue
        if line[at] == "#":
            break
        start, chars, quote = at, [], None
        while at < end and (quote or not line[at].isspace()):
            char = line[at]
            if quote and char == quote:
                quote = None
            elif not quote and char in "'\"":
                quote = char
            elif char == "\\" and quote != "'" and at + 1 < end:
                at += 1
                chars.append(line[at])
            else:
                chars.append(char)
            at += 1
        if quote:
            raise UsageError(f"unterminated {quote} quote", column=start + 1)
        words.append(("".join(chars), start + 1))
    return words


def split_line(line: str) -> list[str]:
    """The words of a command line (see tokenize)."""
    return [word for word, _ in tokenize(line)]


def lookup(word: str) -> Command:
    """The command named or aliased ``word``; raise UsageError with the known names."""
    name = _ALIASES.get(word, word)
    if name not in COMMANDS:
        raise UsageError(unknown("command", word, all_names(), label="known", shown=COMMANDS,
                                 canonical=_ALIASES), arg=-1)
    return COMMANDS[name]


def execute(session: "Session", line: str) -> str:
    """Run one command line against the session and return its output ('' for blank lines).

    A UsageError leaving a handler gets the column of the word it blames (the command word by default).
    """
    tokens = tokenize(line)
    if not tokens:
        return ""
    words = [word for word, _ in tokens]
    try:
        return lookup(words[0]).handler(session, words[1:])
    except UsageError as exc:
        if exc.column is None:
            index = 0 if exc.arg is None else min(exc.arg + 1, len(tokens) - 1)
            exc.column = tokens[index][1]
        raise
