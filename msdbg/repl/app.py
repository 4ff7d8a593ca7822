"""The prompt: prompt_toolkit with history, completion, highlighting and a status toolbar."""

from __future__ import annotations

import os
import sys
from typing import Callable

from prompt_toolkit import PromptSession
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.lexers import PygmentsLexer
from prompt_toolkit.output import Output
from prompt_toolkit.patch_stdout import patch_stdout

from msdbg.repl.completion import CommandCompleter
from msdbg.repl.lexer import CommandLexer
from msdbg.session import Session

PROMPT = "(msdbg) "
HISTORY_FILE = "~/.msdbg_history"


def toolbar_text(session: Session) -> str:
    """Rank, graph, step, state, watchpoints and hits, for the bottom toolbar."""
    key = session.current
    return toolbar_line(key.rank if key else None, key.graph if key else None, key.iteration if key else None,
                        session.control.state if session.control else "offline",
                        len(session.watchpoints.active()), len(session.hits))


def toolbar_line(rank: int | None, graph: int | None, step: int | None, state: str, watchpoints: int,
                 hits: int) -> str:
    """The toolbar's text (a local session's, or an attached training's status)."""
    where = f"rank {rank} | graph {graph} | step {step}" if step is not None else "before the first step"
    return f" {where} | {state} | watchpoints {watchpoints} | hits {hits} "


def _history() -> History:
    path = os.path.expanduser(HISTORY_FILE)
    try:
        with open(path, "a", encoding="utf-8"):
            pass
        return FileHistory(path)
    except OSError:
        return InMemoryHistory()


class PromptReader:
    """Reads command lines with prompt_toolkit (a terminal, or a pipe input in tests)."""

    def __init__(self, session: Session, input: Input | None = None, output: Output | None = None,
                 toolbar: Callable[[], str] | None = None):
        self.prompt = PromptSession(
            PROMPT, history=_history() if input is None else InMemoryHistory(),
            completer=CommandCompleter(session), lexer=PygmentsLexer(CommandLexer),
            bottom_toolbar=toolbar or (lambda: toolbar_text(session)), complete_while_typing=False,
            refresh_interval=0.5 if toolbar else 0,  # another process's status changes while the prompt waits
            input=input, output=output)

    def read(self) -> str | None:
        """One line; None at end of input (Ctrl-D). Ctrl-C clears the line and prompts again (as pdb and IPython
        do): it never becomes an empty line, which would repeat the last step."""
        while True:
            try:
                with patch_stdout(raw=True):
                    return self.prompt.prompt()
            except EOFError:
                return None
            except KeyboardInterrupt:
                continue


class LineReader:
    """Reads command lines from a pipe or a file on standard input, echoing them after the prompt."""

    def read(self) -> str | None:
        print(PROMPT, end="", flush=True)
        line = sys.stdin.readline()
        if not line:
            print()
            return None
        print(line.rstrip("\n"), flush=True)
        return line.rstrip("\n")


def make_reader(session: Session, toolbar: Callable[[], str] | None = None) -> PromptReader | LineReader:
    """A prompt on a terminal (``toolbar``: its bottom bar, default the session's), plain line reading otherwise
    (pipes, heredocs)."""
    if sys.stdin.isatty() and sys.stdout.isatty():
        return PromptReader(session, toolbar=toolbar)
    return LineReader()
