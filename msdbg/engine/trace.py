"""Trace-back: which hit of a step is the origin of the others."""

from __future__ import annotations

from collections import defaultdict

from msdbg.engine.hits import Hit
from msdbg.store.graph import Graph


def mark_origins(hits: list[Hit], graph: Graph | None) -> None:
    """Set ``first_offending`` on one hit per watchpoint of a step.

    The origin is a hit none of whose graph ancestors (through node inputs) hit the same watchpoint in
    that step; among several, the first in execution order. Without a graph, the first in execution order.
    """
    by_watchpoint: dict[int, list[Hit]] = defaultdict(list)
    for hit in hits:
        by_watchpoint[hit.watchpoint].append(hit)
    for group in by_watchpoint.values():
        candidates = group
        if graph is not None:
            hit_nodes = {h.entry.graph_node.name for h in group if h.entry.graph_node is not None}
            candidates = [h for h in group if _has_no_hit_ancestor(h, hit_nodes, graph)] or group
        origin = min(candidates, key=lambda h: (h.entry.order, h.entry.file.timestamp, h.entry.slot))
        origin.first_offending = True


def _has_no_hit_ancestor(hit: Hit, hit_nodes: set[str], graph: Graph) -> bool:
    node = hit.entry.graph_node
    if node is None:
        return True
    return not (graph.ancestors(node.name) & (hit_nodes - {node.name}))


def origin_chain(hit: Hit, hits: list[Hit], graph: Graph | None) -> list[Hit]:
    """The hits on the path from ``hit`` back to its origin, nearest first (for ``trace``)."""
    if graph is None or hit.entry.graph_node is None:
        return [hit]
    same = {h.entry.graph_node.name: h for h in hits
            if h.watchpoint == hit.watchpoint and h.entry.graph_node is not None}
    chain = [hit]
    current = hit.entry.graph_node.name
    while True:
        upstream = [same[n] for n in graph.ancestors(current) if n in same and n != current]
        if not upstream:
            return chain
        nearest = max(upstream, key=lambda h: h.entry.order)
        chain.append(nearest)
        current = nearest.entry.graph_node.name
