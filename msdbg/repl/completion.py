"""Tab completion: commands, condition names, their parameters, and tensor names of the current step."""

from __future__ import annotations

from typing import Iterable

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from msdbg.commands import all_names
from msdbg.commands.registry import COMMANDS, lookup
from msdbg.commands.tensor_names import name_index
from msdbg.engine.conditions import CONDITIONS
from msdbg.errors import MsdbgError
from msdbg.session import Session

_TENSOR_COMMANDS = {"print", "stats", "hist", "history", "diff", "node", "inputs", "outputs", "save", "list"}
_INFO_TOPICS = ["watchpoints", "hits", "step"]


class CommandCompleter(Completer):
    """Completes the word under the cursor from what the command before it accepts."""

    def __init__(self, session: Session):
        self.session = session

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        text = document.text_before_cursor
        words = text.split()
        current = "" if not words or text[-1].isspace() else words[-1]
        before = words[:-1] if current else words
        for candidate in self.candidates(before, current):
            if candidate.startswith(current) or ("/" in candidate and candidate.rsplit("/", 1)[-1].startswith(current)):
                yield Completion(candidate, start_position=-len(current))

    def candidates(self, before: list[str], current: str) -> list[str]:
        if not before:
            return sorted(all_names())
        try:
            name = lookup(before[0]).name
        except MsdbgError:
            return []
        if name == "watch":
            return self._watch(before)
        if name == "info":
            return _INFO_TOPICS if len(before) == 1 else []
        if name == "help":
            return sorted(COMMANDS) if len(before) == 1 else []
        if name in _TENSOR_COMMANDS:
            return self.tensor_names()
        return []

    def _watch(self, before: list[str]) -> list[str]:
        if len(before) == 1:
            return sorted(CONDITIONS)
        if before[-1] == "on":
            return self.tensor_names()
        condition = CONDITIONS.get(before[1])
        if condition is None:
            return []
        given = {w.split("=", 1)[0] for w in before[2:]}
        return [f"{p.name}=" for p in condition.params if p.name not in given] + ["on"]

    def tensor_names(self) -> list[str]:
        try:
            entries = self.session.current_entries()
        except MsdbgError:
            return []
        return sorted(name_index(entries))
