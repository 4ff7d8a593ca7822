"""Trace-back: which hit of a step is the origin of the others, and the chain of hits from one back to it.

Each is one walk over the graph rather than one ancestor set per hit, so a NaN that spreads to most of a large
graph costs a pass over the graph, not a pass per hit.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from msdbg.engine.hits import Hit
from msdbg.store.graph import Graph


def mark_origins(hits: list[Hit], graph: Graph | None) -> None:
    """Set ``first_offending`` on one hit per watchpoint of a step.

    The origin is a hit none of whose graph ancestors (through node inputs) hit the same watchpoint in
    that step; among several, the first in execution order. Without a graph, the first in execution order.
    A hit on a tensor that could not be placed in the graph (``entry.unplaced``) has unknown ancestors: any hit
    that ran before it may be one, so it is a candidate only when it ran first of all.
    """
    by_watchpoint: dict[int, list[Hit]] = defaultdict(list)
    for hit in hits:
        by_watchpoint[hit.watchpoint].append(hit)
    for group in by_watchpoint.values():
        candidates = group
        if graph is not None:
            hit_nodes = {h.entry.graph_node.name for h in group if h.entry.graph_node is not None}
            downstream = nodes_below_others(hit_nodes, graph)
            first = min(group, key=_execution_key)
            candidates = [h for h in group if not h.entry.unplaced and (
                h.entry.graph_node is None or h.entry.graph_node.name not in downstream)]
            candidates = candidates + [first] if first.entry.unplaced else candidates or group
        origin = min(candidates, key=_execution_key)
        origin.first_offending = True


def _execution_key(hit: Hit) -> tuple[int, int, int]:
    entry = hit.entry
    return entry.order, entry.file.timestamp, entry.file.slot


def nodes_below_others(hit_nodes: set[str], graph: Graph) -> set[str]:
    """The hit nodes that another hit node is an ancestor of (also compare's diverged nodes).

    One walk down the graph from all hit nodes, each node visited once and labelled with the hit that reached it
    first. A hit labelled with itself reached itself through a cycle (kernel graphs have none); for it alone the
    answer comes from its ancestor set.
    """
    reached_from: dict[str, str] = {}
    for hit in hit_nodes:
        stack = list(graph.dependents(hit))
        while stack:
            node = stack.pop()
            if node not in reached_from:
                reached_from[node] = hit
                stack.extend(graph.dependents(node))
    return {node for node in hit_nodes if node in reached_from
            and (reached_from[node] != node or graph.ancestors(node) & (hit_nodes - {node}))}


def origin_chain(hit: Hit, hits: list[Hit], graph: Graph | None) -> list[Hit]:
    """The hits on the path from ``hit`` back to its origin, nearest first (for ``trace``).

    Each next link is the latest hit (in execution order) among the graph ancestors of the previous one. A hit that
    could not be placed in the graph links to the latest hit of its watchpoint that ran before it (its ancestors
    are unknown, never taken as none).
    """
    same_watchpoint = sorted((h for h in hits if h.watchpoint == hit.watchpoint),
                             key=lambda h: (_execution_key(h), h.entry.node))
    unplaced_links = []
    while hit.entry.unplaced and graph is not None:
        earlier = [h for h in same_watchpoint if _execution_key(h) < _execution_key(hit)]
        if not earlier:
            return unplaced_links + [hit]
        unplaced_links.append(hit)
        hit = earlier[-1]
    if graph is None or hit.entry.graph_node is None:
        return unplaced_links + [hit]
    same = {h.entry.graph_node.name: h for h in hits
            if h.watchpoint == hit.watchpoint and h.entry.graph_node is not None}
    ranked = [name for _, name in sorted((_execution_key(h), name) for name, h in same.items())]
    start = hit.entry.graph_node.name
    above = _latest_hit_above(start, {name: i for i, name in enumerate(ranked)}, graph)
    chain = unplaced_links + [hit]
    current = above.get(start, -1)
    while current >= 0:
        chain.append(same[ranked[current]])
        current = above[ranked[current]]
    return chain


def _latest_hit_above(start: str, rank: dict[str, int], graph: Graph) -> dict[str, int]:
    """For ``start`` and each node before it in dependency order that is a hit node or below one: the highest
    ``rank`` among the hit nodes above it (-1: none). A node left out has no hit node above it.

    One pass in dependency order over those nodes, each value made from its dependencies' values. A dependency
    that comes later in the order (only on a cycle, which kernel graphs do not have) counts for nothing, so every
    value names an earlier node and a chain that follows them ends.
    """
    order = graph.dependency_order(start)
    below_hits = _reached_from(rank, set(order), graph)
    above: dict[str, int] = {}
    at_or_above: dict[str, int] = {}
    for node in order:
        if node in below_hits:
            value = -1
            for dependency in graph.dependencies(node):
                if at_or_above.get(dependency, -1) > value:
                    value = at_or_above[dependency]
            above[node] = value
            at_or_above[node] = max(value, rank.get(node, -1))
    return above


def _reached_from(sources: Iterable[str], within: set[str], graph: Graph) -> set[str]:
    """The nodes of ``within`` that are one of ``sources`` or below one through nodes of ``within``."""
    reached: set[str] = set()
    stack = [source for source in sources if source in within]
    while stack:
        node = stack.pop()
        if node not in reached:
            reached.add(node)
            stack.extend([below for below in graph.dependents(node) if below in within])
    return reached
