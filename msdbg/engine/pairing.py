"""Which node of run B is which node of run A, and which dumped tensors of a step therefore pair.

Two runs of the same training need not name their nodes alike: kernels are numbered by creation (an extra op
shifts ``Tanh-op0`` to ``Tanh-op1``), a Cell may be renamed, mixed precision inserts Casts. Nodes are paired by
what they compute, in A's execution order:

1. parameters by name (data inputs left over: by order and shape);
2. a kernel of B with the same op type whose inputs are the B partners of A's node's inputs (plumbing such as
   Load, Depend and Cast is looked through, so Casts that mixed precision inserts change nothing);
3. failing that, a kernel of B with the same full name, then one with the same name but for its ``-opN``
   number (k-th with k-th in execution order);
4. after a full sweep, an unpaired kernel of B that takes the same (paired) inputs in any order, even of another
   op type: one op replaced by another (ReLU by Sigmoid) pairs with it.

Sweeps repeat while they pair something. Tensors then pair by (node, io, slot); tensors whose file could not be
placed in the graph pair by file name, then by name without ``-opN`` in execution order.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from msdbg.store.dumpdir import TensorEntry
from msdbg.store.graph import Graph, Node

_OP_NUMBER = re.compile(r"-op\d+$")
MAX_SWEEPS = 4


@dataclass
class StepPairing:
    """The tensors of one step of each run, paired, and those left over on each side."""

    pairs: list[tuple[TensorEntry, TensorEntry]] = field(default_factory=list)
    only_a: list[TensorEntry] = field(default_factory=list)
    only_b: list[TensorEntry] = field(default_factory=list)
    nodes: dict[str, str] = field(default_factory=dict)  # A node name -> B node name


def without_number(name: str) -> str:
    """A node or file op name without its kernel number (``.../Tanh-op3`` -> ``.../Tanh``)."""
    return _OP_NUMBER.sub("", name)


def pair_nodes(graph_a: Graph, graph_b: Graph) -> dict[str, str]:
    """A node name -> B node name for every node of A that has a partner in B."""
    mapping = _pair_parameters(graph_a, graph_b)
    kernels_a, kernels_b = _kernels(graph_a), _kernels(graph_b)
    inputs_a = {node.name: _value_inputs(graph_a, node) for node in kernels_a}
    inputs_b = {node.name: _value_inputs(graph_b, node) for node in kernels_b}
    by_inputs: dict[tuple[str, ...], list[Node]] = defaultdict(list)
    by_input_set: dict[tuple[str, ...], list[Node]] = defaultdict(list)
    by_name: dict[str, Node] = {}
    by_unnumbered: dict[tuple[str, str], list[Node]] = defaultdict(list)
    for node in kernels_b:
        by_inputs[inputs_b[node.name]].append(node)
        by_input_set[tuple(sorted(inputs_b[node.name]))].append(node)
        by_name[node.full_name] = node
        by_unnumbered[(node.op_type, without_number(node.full_name))].append(node)
    taken = set(mapping.values())

    def first_free(candidates: list[Node], op_type: str | None) -> Node | None:
        return next((n for n in candidates if n.name not in taken and (op_type is None or n.op_type == op_type)),
                    None)

    def strict(node: Node) -> Node | None:
        mapped = [mapping.get(name) for name in inputs_a[node.name]]
        if mapped and None not in mapped:
            found = first_free(by_inputs.get(tuple(mapped), []), node.op_type)
            if found is not None:
                return found
        named = by_name.get(node.full_name)
        if named is not None and named.name not in taken and named.op_type == node.op_type:
            return named
        return first_free(by_unnumbered.get((node.op_type, without_number(node.full_name)), []), None)

    def relaxed(node: Node) -> Node | None:
        mapped = [mapping.get(name) for name in inputs_a[node.name]]
        if not mapped or None in mapped:
            return None
        candidates = by_input_set.get(tuple(sorted(mapped)), [])
        return first_free(candidates, node.op_type) or first_free(candidates, None)

    for _ in range(MAX_SWEEPS):
        paired = 0
        for match in (strict, relaxed):
            for node in kernels_a:
                if node.name in mapping:
                    continue
                partner = match(node)
                if partner is not None:
                    mapping[node.name] = partner.name
                    taken.add(partner.name)
                    paired += 1
        if not paired:
            break
    return mapping


def pair_step(entries_a: list[TensorEntry], entries_b: list[TensorEntry], nodes: dict[str, str] | None
              ) -> StepPairing:
    """Pair the tensors of one step of each run, given the node pairing of their graphs (None when a run has no
    graph: then every tensor pairs by file name)."""
    result = StepPairing(nodes=nodes or {})
    by_node = nodes is not None
    placed_b = {(e.graph_node.name, e.io, e.slot): e for e in entries_b if by_node and e.graph_node is not None}
    unplaced_a = []
    for entry in entries_a:
        if not by_node or entry.graph_node is None:
            unplaced_a.append(entry)
            continue
        partner_node = nodes.get(entry.graph_node.name)
        partner = placed_b.pop((partner_node, entry.io, entry.slot), None) if partner_node is not None else None
        if partner is None:
            result.only_a.append(entry)
        else:
            result.pairs.append((entry, partner))
    unplaced_b = [e for e in entries_b if not by_node or e.graph_node is None]
    pairs, left_a, left_b = _pair_by_file_name(unplaced_a, unplaced_b)
    result.pairs.extend(pairs)
    result.only_a.extend(left_a)
    result.only_b = list(placed_b.values()) + left_b
    return result


def _pair_by_file_name(entries_a: list[TensorEntry], entries_b: list[TensorEntry]
                       ) -> tuple[list[tuple[TensorEntry, TensorEntry]], list[TensorEntry], list[TensorEntry]]:
    """Tensors without a graph node: same file op name and io/slot, then the same name without ``-opN``, k-th
    with k-th in execution order. Returns the pairs and what is left of each side."""
    pairs = []
    exact = {(e.op_type, e.file.op_name, e.io, e.slot): e for e in entries_b}
    rest_a = []
    for entry in entries_a:
        partner = exact.pop((entry.op_type, entry.file.op_name, entry.io, entry.slot), None)
        if partner is None:
            rest_a.append(entry)
        else:
            pairs.append((entry, partner))
    loose: dict[tuple, list[TensorEntry]] = defaultdict(list)
    for entry in sorted(exact.values(), key=_time_key):
        loose[(entry.op_type, without_number(entry.file.op_name), entry.io, entry.slot)].append(entry)
    left_a = []
    for entry in sorted(rest_a, key=_time_key):
        bucket = loose.get((entry.op_type, without_number(entry.file.op_name), entry.io, entry.slot))
        if bucket:
            pairs.append((entry, bucket.pop(0)))
        else:
            left_a.append(entry)
    left_b = sorted((e for bucket in loose.values() for e in bucket), key=_time_key)
    return pairs, left_a, left_b


def _time_key(entry: TensorEntry) -> tuple[int, int]:
    return entry.order, entry.file.timestamp


def _pair_parameters(graph_a: Graph, graph_b: Graph) -> dict[str, str]:
    """Parameters by name; data inputs left over by their order and shape."""
    mapping = {name: name for name, node in graph_a.nodes.items()
               if node.is_parameter and name in graph_b.nodes and graph_b.nodes[name].is_parameter}
    spare_b = [n for n in graph_b.nodes.values() if n.is_parameter and n.name not in mapping
               and graph_b.param_category.get(n.name) == "input"]
    for node in graph_a.nodes.values():
        if node.is_parameter and node.name not in mapping and graph_a.param_category.get(node.name) == "input":
            partner = next((b for b in spare_b if b.shape == node.shape), None)
            if partner is not None:
                spare_b.remove(partner)
                mapping[node.name] = partner.name
    return mapping


def _kernels(graph: Graph) -> list[Node]:
    """The kernels of a graph in execution order (graph order when the execution order file is missing)."""
    if graph.exec_index:
        ordered = sorted(graph.exec_index.items(), key=lambda item: item[1])
        return [graph.by_full_name[name] for name, _ in ordered if name in graph.by_full_name]
    return [node for node in graph.nodes.values() if not node.is_parameter]


def _value_inputs(graph: Graph, node: Node) -> tuple[str, ...]:
    """The nodes computing the values a node reads, looking through plumbing and Casts; constants left out."""
    producers = []
    for name in node.inputs:
        producer = graph.resolve(name)
        if producer is not None:
            producers.append(producer.name)
    return tuple(producers)
