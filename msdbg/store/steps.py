"""The StepSource protocol and a source made of several: graph dumps on disk and PyNative steps in memory.

Engine, Session and commands read steps only through these methods, so a step captured from a graph dump and
one recorded from PyNative calls are evaluated, traced, listed and printed alike.
"""

from __future__ import annotations

from typing import Callable, Protocol, TypeVar

from msdbg.store.dumpdir import StepKey, TensorEntry
from msdbg.store.graph import Graph

T = TypeVar("T")


class StepSource(Protocol):
    """Ranks, steps in order, a step's tensors and its graph."""

    graph_errors: dict[tuple[int, int], str]

    def ranks(self) -> list[int]: ...

    def steps(self) -> list[StepKey]: ...

    def tensors(self, key: StepKey) -> list[TensorEntry]: ...

    def derived(self, key: StepKey, build: Callable[[list[TensorEntry]], T]) -> T: ...

    def graph_of(self, key: StepKey) -> Graph | None: ...

    def loaded_graphs(self) -> list[Graph]: ...

    def owns(self, key: StepKey) -> bool: ...


class CombinedSource:
    """Several sources read as one; each step belongs to the source that lists it (``owns``)."""

    def __init__(self, *sources: StepSource):
        self.sources = sources
        self.graph_errors: dict[tuple[int, int], str] = {}
        for source in sources:
            self.graph_errors = source.graph_errors  # only dumps have unreadable graphs; the last one's

    def ranks(self) -> list[int]:
        return sorted({rank for source in self.sources for rank in source.ranks()})

    def steps(self) -> list[StepKey]:
        return [key for source in self.sources for key in source.steps()]

    def _source(self, key: StepKey) -> StepSource:
        return next((source for source in self.sources if source.owns(key)), self.sources[0])

    def tensors(self, key: StepKey) -> list[TensorEntry]:
        return self._source(key).tensors(key)

    def derived(self, key: StepKey, build: Callable[[list[TensorEntry]], T]) -> T:
        return self._source(key).derived(key, build)

    def graph_of(self, key: StepKey) -> Graph | None:
        return self._source(key).graph_of(key)

    def graph(self, rank: int, graph_id: int) -> Graph | None:
        """Graph ``graph_id`` of the first source (the dump tree: ``compare`` pairs dumped graphs by number)."""
        return self.sources[0].graph(rank, graph_id)

    def loaded_graphs(self) -> list[Graph]:
        return [graph for source in self.sources for graph in source.loaded_graphs()]

    def owns(self, key: StepKey) -> bool:
        return any(source.owns(key) for source in self.sources)
