"""Keep only the last K step folders of each graph, so a long training's dump stays bounded."""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from typing import Callable

from msdbg.store.dumpdir import DumpDir, StepKey


def prune(dump: DumpDir, done: set[StepKey], keep: int, rank: int | None = None,
          remove: Callable[[str], None] | None = None, listed: list[StepKey] | None = None) -> list[StepKey]:
    """Delete all but the newest ``keep`` evaluated iteration folders of each (rank, net, graph).

    Only folders in ``done`` (already evaluated) are deleted, and only ``rank``'s when given (other ranks sharing
    the directory prune their own). ``remove(path)`` deletes a folder (default: at once; see ``Trash``); ``listed``:
    ``dump.steps()`` when the caller has it already. Returns what was deleted.
    """
    remove = remove or _remove_now
    per_graph: dict[tuple[int, str, int], list[StepKey]] = defaultdict(list)
    for key in dump.steps() if listed is None else listed:
        if rank is None or key.rank == rank:
            per_graph[(key.rank, key.net, key.graph)].append(key)
    removed = []
    for keys in per_graph.values():
        keys.sort()
        for key in keys[: max(0, len(keys) - keep)]:
            if key in done:
                remove(dump.step_dir(key))
                removed.append(key)
    return removed


def _remove_now(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


class Trash:
    """Pruned folders set aside at once and deleted later: a step of a large network holds hundreds of MB in
    hundreds of files, too slow to delete while the training waits. ``put`` renames the folder (instant, same file
    system) to a hidden name in its net folder, where no step listing looks; ``empty`` deletes what was put."""

    def __init__(self):
        self._paths: list[str] = []

    def put(self, path: str) -> None:
        graph_dir = os.path.dirname(path)
        aside = os.path.join(os.path.dirname(graph_dir),
                             f".msdbg-pruned-{os.path.basename(graph_dir)}-{os.path.basename(path)}")
        try:
            os.rename(path, aside)
        except OSError:
            _remove_now(path)
            return
        self._paths.append(aside)

    def empty(self) -> None:
        paths, self._paths = self._paths, []
        for path in paths:
            _remove_now(path)
