"""Keep only the last K step folders of each graph, so a long training's dump stays bounded."""

from __future__ import annotations

import shutil
from collections import defaultdict

from msdbg.store.dumpdir import DumpDir, StepKey


def prune(dump: DumpDir, done: set[StepKey], keep: int, rank: int | None = None) -> list[StepKey]:
    """Delete all but the newest ``keep`` evaluated iteration folders of each (rank, net, graph).

    Only folders in ``done`` (already evaluated) are deleted, and only ``rank``'s when given (other ranks sharing
    the directory prune their own). Returns what was deleted.
    """
    per_graph: dict[tuple[int, str, int], list[StepKey]] = defaultdict(list)
    for key in dump.steps():
        if rank is None or key.rank == rank:
            per_graph[(key.rank, key.net, key.graph)].append(key)
    removed = []
    for keys in per_graph.values():
        keys.sort()
        for key in keys[: max(0, len(keys) - keep)]:
            if key in done:
                shutil.rmtree(dump.step_dir(key), ignore_errors=True)
                removed.append(key)
    return removed
