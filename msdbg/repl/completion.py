"""Tab completion: commands, condition names, their parameters, and tensor names of the current step."""

from __future__ import annotations

from typing import Iterable

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from msdbg.commands import all_names
from msdbg.commands.registry import COMMANDS, lookup
from msdbg.commands.tensor_names import StepNames
from msdbg.engine.conditions import CONDITIONS
from msdbg.errors import MsdbgError
from msdbg.session import Session

_TENSOR_COMMANDS = {"print", "stats", "hist", "history", "diff", "node", "inputs", "outputs", "save", "list", "plot",
                    "display"}
_INFO_TOPICS = ["watchpoints", "hits", "step", "ranks"]
_HELP_TOPICS = ["conditions", "names"]
_WORDS = {*_INFO_TOPICS, *_HELP_TOPICS, "on"}
#: At most this many tensor names are offered at once (a large graph has 100k+); typing more narrows them.
TENSOR_COMPLETIONS_SHOWN = 200


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
            # a finished word gets its space; 'param=' waits for a value, a tensor name may take a [slice]
            done = before == [] or (candidate in CONDITIONS or candidate in _WORDS)
            meta = CONDITIONS[candidate].description if candidate in CONDITIONS else None
            yield Completion(candidate + (" " if done else ""), start_position=-len(current), display=candidate,
                             display_meta=meta)

    def candidates(self, before: list[str], current: str) -> list[str]:
        """The words that complete ``current`` after the words ``before``."""
        if not before:
            return _starting_with(sorted(all_names()), current)
        try:
            name = lookup(before[0]).name
        except MsdbgError:
            return []
        if name == "watch":
            return self._watch(before, current)
        if name == "info":
            return _starting_with(_INFO_TOPICS, current) if len(before) == 1 else []
        if name == "help":
            return _starting_with([*sorted(COMMANDS), *_HELP_TOPICS, *sorted(CONDITIONS)], current) \
                if len(before) == 1 else []
        if name in _TENSOR_COMMANDS:
            return self.tensor_names(current)
        return []

    def _watch(self, before: list[str], current: str) -> list[str]:
        if len(before) == 1:
            return _starting_with(sorted(CONDITIONS), current)
        if before[-1] == "on":
            return self.tensor_names(current)
        condition = CONDITIONS.get(before[1])
        if condition is None:
            return []
        given = {w.split("=", 1)[0] for w in before[2:]}
        return _starting_with([f"{p.name}=" for p in condition.params if p.name not in given] + ["on"], current)

    def tensor_names(self, prefix: str) -> list[str]:
        """Names of the current step's tensors that start with ``prefix`` (or whose last ``/`` part does)."""
        try:
            names = self.session.current_derived(StepNames)
        except MsdbgError:
            return []
        return names.complete(prefix, TENSOR_COMPLETIONS_SHOWN)


def _starting_with(words: list[str], prefix: str) -> list[str]:
    return [word for word in words if word.startswith(prefix)]
