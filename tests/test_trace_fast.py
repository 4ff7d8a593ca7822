"""Trace-back in one pass over the graph gives what one ancestor set per hit gives (random graphs, no MindSpore)."""

import random

import pytest

from msdbg.engine.hits import Hit
from msdbg.engine.trace import mark_origins, origin_chain
from msdbg.store.dumpdir import StepKey, TensorEntry
from msdbg.store.filenames import TensorFileName
from msdbg.store.graph import Graph, Node

STEP = StepKey(0, "Net", 0, 0)


def _random_graph(rng: random.Random) -> Graph:
    """A random DAG: data inputs, weights each updated by an SGD op, and ops reading any earlier node (weights
    included, which adds no edge), so there are several roots and parameters with ancestors."""
    inputs = [Node(f"x{i}", f"x{i}", "Parameter", "") for i in range(rng.randint(1, 3))]
    weights = [Node(f"w{i}", f"w{i}", "Parameter", "") for i in range(rng.randint(0, 4))]
    nodes = inputs + weights
    ops: list[Node] = []
    for i in range(rng.randint(1, 40)):
        earlier = nodes + ops
        op_inputs = [rng.choice(earlier).name for _ in range(rng.randint(0, 3))]
        ops.append(Node(f"op{i}", f"Default/block{i % 3}/Op-op{i}", "Op", f"Default/block{i % 3}", op_inputs))
    for i, weight in enumerate(weights):
        if ops and rng.random() < 0.8:
            gradient = rng.choice(ops).name
            ops.append(Node(f"sgd{i}", f"Default/optimizer/SGD-op{i}", "SGD", "Default/optimizer",
                            [weight.name, gradient]))
    kinds = {n.name: n in weights for n in inputs + weights}
    order = [op.full_name for op in ops if rng.random() < 0.9]  # not every op runs as a kernel
    rng.shuffle(order)  # execution order decides ties only; trace-back must not take it for the graph's
    return Graph(0, nodes + ops, kinds, order)


def _hit(graph: Graph, node: Node | None, watchpoint: int, slot: int, timestamp: int, unplaced: bool = False,
         order: int | None = None) -> Hit:
    op_type = node.op_type if node else "Op"
    name = node.full_name if node else "ghost"
    file = TensorFileName(op_type, name, 0, 0, timestamp, "output", slot, "DefaultFormat", "float32")
    order = order if order is not None else graph.order_of(node) if node else 0
    entry = TensorEntry(STEP, f"/dump/{name}.npy", file, name, op_type, "activation", None, order, node,
                        unplaced=unplaced)
    return Hit(watchpoint, "tensor_overflow", entry, {}, {})


def _random_hits(graph: Graph, rng: random.Random) -> list[Hit]:
    """Hits on random nodes (parameters too), two watchpoints, a second slot now and then, equal timestamps (so
    ties reach the node name), a node that is not in the graph and an entry without a graph node."""
    names = sorted(graph.nodes)
    hits = []
    for name in rng.sample(names, rng.randint(1, len(names))):
        for slot in range(rng.choice([1, 1, 1, 2])):
            hits.append(_hit(graph, graph.nodes[name], rng.choice([1, 1, 2]), slot, rng.randint(0, 3)))
    if rng.random() < 0.3:
        hits.append(_hit(graph, Node("ghost", "Default/ghost", "Op", "Default"), 1, 0, 0))
    if rng.random() < 0.3:
        hits.append(_hit(graph, None, 1, 0, 0))
    for _ in range(rng.choice([0, 0, 1, 2])):  # kernels the graph does not name: ordered by dump time only
        hits.append(_hit(graph, None, rng.choice([1, 2]), 0, rng.randint(0, 3), unplaced=True,
                         order=rng.randint(0, len(graph.exec_index) + 1)))
    rng.shuffle(hits)
    return hits


def _key(hit: Hit) -> tuple:
    return hit.entry.order, hit.entry.file.timestamp, hit.entry.slot


def _reference_origins(hits: list[Hit], graph: Graph) -> set[int]:
    """The definition: per watchpoint, the first (execution order) of the hits with no hit among their ancestors."""
    origins = set()
    for watchpoint in {h.watchpoint for h in hits}:
        group = [h for h in hits if h.watchpoint == watchpoint]
        hit_nodes = {h.entry.graph_node.name for h in group if h.entry.graph_node is not None}
        candidates = [h for h in group if not h.entry.unplaced and (h.entry.graph_node is None
                      or not graph.ancestors(h.entry.graph_node.name) & (hit_nodes - {h.entry.graph_node.name}))]
        first = min(group, key=_key)
        if first.entry.unplaced:  # its ancestors are unknown: it may be an origin only by running first
            candidates.append(first)
        origins.add(id(min(candidates or group, key=_key)))
    return origins


def _reference_chain(hit: Hit, hits: list[Hit], graph: Graph) -> list[Hit]:
    """The definition: from the hit, repeatedly the latest hit among the ancestors (ties: file, slot, node name);
    from an unplaced hit, the latest hit that ran before it."""
    if hit.entry.unplaced:
        earlier = sorted((h for h in hits if h.watchpoint == hit.watchpoint and _key(h) < _key(hit)),
                         key=lambda h: (_key(h), h.entry.node))
        return [hit] + (_reference_chain(earlier[-1], hits, graph) if earlier else [])
    if hit.entry.graph_node is None:
        return [hit]
    same = {h.entry.graph_node.name: h for h in hits
            if h.watchpoint == hit.watchpoint and h.entry.graph_node is not None}
    chain, current = [hit], hit.entry.graph_node.name
    while True:
        upstream = [same[n] for n in graph.ancestors(current) if n in same and n != current]
        if not upstream:
            return chain
        chain.append(max(upstream, key=lambda h: (*_key(h), h.entry.graph_node.name)))
        current = chain[-1].entry.graph_node.name


@pytest.mark.parametrize("seed", range(300))
def test_origins_and_chains_match_the_definition_on_random_graphs(seed):
    rng = random.Random(seed)
    graph = _random_graph(rng)
    hits = _random_hits(graph, rng)
    mark_origins(hits, graph)
    assert {id(h) for h in hits if h.first_offending} == _reference_origins(hits, graph)
    for hit in hits:
        assert origin_chain(hit, hits, graph) == _reference_chain(hit, hits, graph)


def test_weight_hits_trace_through_their_update_not_their_reads():
    """A weight's dump is its value after the update: its ancestors are the update's, not the ops reading it."""
    x, w = Node("x", "x", "Parameter", ""), Node("w", "w", "Parameter", "")
    matmul = Node("mm", "Default/MatMul-op0", "MatMul", "Default", ["x", "w"])
    grad = Node("g", "Gradients/MatMul-op1", "MatMul", "Gradients", ["mm", "x"])
    sgd = Node("sgd", "Default/SGD-op0", "SGD", "Default", ["w", "g"])
    graph = Graph(0, [x, w, matmul, grad, sgd], {"x": False, "w": True}, ["Default/MatMul-op0",
                                                                        "Gradients/MatMul-op1", "Default/SGD-op0"])
    weight_hit, matmul_hit, grad_hit = (_hit(graph, graph.nodes[n], 1, 0, 0) for n in ("w", "mm", "g"))
    hits = [weight_hit, grad_hit, matmul_hit]
    mark_origins(hits, graph)
    assert [h.first_offending for h in hits] == [False, False, True]
    assert origin_chain(weight_hit, hits, graph) == [weight_hit, grad_hit, matmul_hit]


def test_no_graph_or_no_hits_upstream():
    graph = _random_graph(random.Random(0))
    root = next(n for n in graph.nodes.values() if not graph.dependencies(n.name))
    lone = _hit(graph, root, 1, 0, 0)
    assert origin_chain(lone, [lone], graph) == [lone]
    assert origin_chain(lone, [lone], None) == [lone]
    first, second = _hit(graph, None, 1, 0, 5), _hit(graph, None, 1, 0, 2)
    mark_origins([first, second], None)
    assert (first.first_offending, second.first_offending) == (False, True)


def test_a_cycle_gives_the_definition_for_origins_and_a_chain_that_ends():
    """Kernel graphs have no cycles, but an odd graph must not hang trace: data input x written by an Assign that
    reads an op computed from x gives x -> mul -> assign -> x."""
    x = Node("x", "x", "Parameter", "")
    mul = Node("mul", "Default/Mul-op0", "Mul", "Default", ["x"])
    assign = Node("assign", "Default/Assign-op0", "Assign", "Default", ["x", "mul"])
    after = Node("add", "Default/Add-op0", "Add", "Default", ["mul"])
    graph = Graph(0, [x, mul, assign, after], {"x": False}, ["Default/Mul-op0", "Default/Assign-op0",
                                                           "Default/Add-op0"])
    assert "x" in graph.ancestors("x"), "the graph has the cycle"
    for names in (["x", "mul", "assign", "add"], ["mul", "add"], ["x"], ["x", "add"]):
        hits = [_hit(graph, graph.nodes[n], 1, 0, 0) for n in names]
        mark_origins(hits, graph)
        assert {id(h) for h in hits if h.first_offending} == _reference_origins(hits, graph)
        for hit in hits:
            chain = origin_chain(hit, hits, graph)
            assert len({id(link) for link in chain}) == len(chain) <= len(hits)


@pytest.mark.parametrize("seed", range(50))
def test_dependency_order_puts_every_node_after_its_dependencies(seed):
    graph = _random_graph(random.Random(seed))
    for name in graph.nodes:
        order = graph.dependency_order(name)
        position = {node: i for i, node in enumerate(order)}
        assert order[-1] == name and len(position) == len(order)
        assert graph.ancestors(name) <= set(position)
        assert all(position[above] < position[node] for node in order for above in graph.dependencies(node))
    assert graph.dependency_order("not a node") == []
