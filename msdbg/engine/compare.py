"""Compare two runs step by step, tensor by tensor, and find where they first part ways.

Steps pair by rank, graph and iteration (graphs of other ids by their op types, iterations by position when the
numbers differ); tensors by pairing.py. In each step the first divergence is the set of diverged nodes none of
whose graph ancestors diverged (the same walk as trace-back), in execution order; for each, its input tensors are
compared side by side to say whether the op itself parts the runs (inputs agree, output does not) or an input
already came in different.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable

from msdbg.engine.pairing import StepPairing, pair_nodes, pair_step
from msdbg.engine.pairmetrics import STATISTICS_NEEDED, PairMetrics, Tolerance, compare_arrays, compare_statistics
from msdbg.engine.stats import TensorStats, compute_stats
from msdbg.engine.trace import nodes_below_others
from msdbg.errors import MsdbgError, UsageError
from msdbg.store.dumpdir import DumpDir, StepKey, TensorEntry
from msdbg.store.graph import Graph, Node
from msdbg.store.stepspec import StepSpec

CAUSE_OP = "op"
CAUSE_UNKNOWN = "unknown"


@dataclass
class TensorPair:
    """One tensor of run A, its partner in run B, and how far apart they are (None: a file was unreadable)."""

    a: TensorEntry
    b: TensorEntry
    metrics: PairMetrics | None

    @property
    def diverged(self) -> bool:
        return self.metrics is not None and not self.metrics.within

    def to_json(self) -> dict:
        data = {"step": self.a.step.iteration, "step_b": self.b.step.iteration, "rank": self.a.step.rank,
                "graph": self.a.step.graph, "node_a": self.a.node, "node_b": self.b.node,
                "op_type": self.a.op_type, "op_type_b": self.b.op_type, "category": self.a.category,
                "param": self.a.param, "io": self.a.io, "slot": self.a.slot}
        data.update(self.metrics.to_json() if self.metrics is not None else {"within": None})
        return data


@dataclass
class InputComparison:
    """One input slot of a diverged node, both sides."""

    slot: int
    producer_a: str | None
    producer_b: str | None
    metrics: PairMetrics | None
    note: str | None = None  # e.g. not dumped, or an op only B has on the way


@dataclass
class Divergence:
    """A node where the runs part ways in a step: out of tolerance with no diverged graph ancestor."""

    pair: TensorPair
    source_a: str | None
    source_b: str | None
    cause: str
    inputs: list[InputComparison] = field(default_factory=list)

    def to_json(self) -> dict:
        a, b, metrics = self.pair.a, self.pair.b, self.pair.metrics
        return {"step": a.step.iteration, "step_b": b.step.iteration, "rank": a.step.rank, "graph": a.step.graph,
                "node_a": a.node, "node_b": b.node, "op_type": a.op_type, "op_type_b": b.op_type, "io": a.io,
                "slot": a.slot, "max_abs": metrics.max_abs, "max_rel": metrics.max_rel, "cosine": metrics.cosine,
                "source_a": self.source_a, "source_b": self.source_b, "cause": self.cause,
                "inputs": [{"slot": i.slot, "node_a": i.producer_a, "node_b": i.producer_b,
                            **({"max_abs": i.metrics.max_abs, "max_rel": i.metrics.max_rel,
                                "cosine": i.metrics.cosine, "within": i.metrics.within} if i.metrics else {}),
                            "note": i.note} for i in self.inputs]}


@dataclass
class CompareResult:
    """Everything ``msdbg compare`` reports."""

    tolerance: Tolerance
    steps: list[tuple[StepKey, StepKey]] = field(default_factory=list)
    pairs: list[TensorPair] = field(default_factory=list)
    divergences: list[Divergence] = field(default_factory=list)
    unpaired_a: dict[tuple, dict] = field(default_factory=dict)
    unpaired_b: dict[tuple, dict] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"pairs": [p.to_json() for p in self.pairs],
                "first_divergence": [d.to_json() for d in self.divergences],
                "unpaired": {"a": list(self.unpaired_a.values()), "b": list(self.unpaired_b.values())},
                "errors": list(self.errors), "notes": list(self.notes), "tolerance": self.tolerance.describe()}


# ----- steps --------------------------------------------------------------------------------------------------
def pair_steps(dump_a: DumpDir, dump_b: DumpDir, *, rank: int | None = None, steps: StepSpec | None = None
               ) -> tuple[list[tuple[StepKey, StepKey]], list[str]]:
    """The steps of A with their partner in B (A's order), and notes on what could not be paired.

    ``steps`` selects A's iterations. Graphs pair by id when both runs hold the same ids, else by their op types.
    Iterations pair by number when B holds every selected number of A, else by position (k-th with k-th).
    """
    notes = []
    ranks_a, ranks_b = dump_a.ranks(), dump_b.ranks()
    ranks = [r for r in ranks_a if r in ranks_b]
    if rank is not None:
        for name, dump, present in (("A", dump_a, ranks_a), ("B", dump_b, ranks_b)):
            if rank not in present:
                raise UsageError(f"--rank {rank}: run {name} ({dump.root}) has ranks "
                                 f"{', '.join(map(str, present)) or 'none'}")
        ranks = [rank]
    elif set(ranks_a) != set(ranks_b):
        notes.append(f"ranks only in one run are not compared (A: {ranks_a}, B: {ranks_b})")
    keys_a, keys_b = dump_a.steps(), dump_b.steps()
    paired = []
    for current in ranks:
        graphs_a = _by_graph([k for k in keys_a if k.rank == current])
        graphs_b = _by_graph([k for k in keys_b if k.rank == current])
        for graph_a, graph_b in _pair_graphs(dump_a, dump_b, current, graphs_a, graphs_b, notes):
            chosen = [k for k in graphs_a[graph_a] if steps is None or k.iteration in steps]
            paired.extend(_pair_iterations(chosen, graphs_b[graph_b], notes))
    return paired, notes


def _by_graph(keys: list[StepKey]) -> dict[tuple[str, int], list[StepKey]]:
    groups: dict[tuple[str, int], list[StepKey]] = {}
    for key in keys:
        groups.setdefault((key.net, key.graph), []).append(key)
    return groups


def _pair_graphs(dump_a: DumpDir, dump_b: DumpDir, rank: int, graphs_a: dict, graphs_b: dict,
                 notes: list[str]) -> list[tuple[tuple[str, int], tuple[str, int]]]:
    if set(graphs_a) == set(graphs_b):
        return [(g, g) for g in sorted(graphs_a)]
    profiles_b = {g: _op_profile(dump_b.graph(rank, g[1])) for g in graphs_b}
    pairs, free = [], set(graphs_b)
    for graph_a in sorted(graphs_a):
        profile = _op_profile(dump_a.graph(rank, graph_a[1]))
        best = max(sorted(free), key=lambda g: _similarity(profile, profiles_b[g]), default=None)
        if best is None or _similarity(profile, profiles_b[best]) == 0:
            notes.append(f"rank {rank} graph {graph_a[1]} of A has no counterpart in B")
            continue
        if best[1] != graph_a[1]:
            notes.append(f"rank {rank}: graph {graph_a[1]} of A pairs with graph {best[1]} of B (same op types)")
        free.discard(best)
        pairs.append((graph_a, best))
    return pairs


def _op_profile(graph: Graph | None) -> Counter:
    return Counter(n.op_type for n in graph.nodes.values() if not n.is_parameter) if graph is not None else Counter()


def _similarity(a: Counter, b: Counter) -> float:
    total = sum((a | b).values())
    return sum((a & b).values()) / total if total else 0.0


def _pair_iterations(keys_a: list[StepKey], keys_b: list[StepKey], notes: list[str]
                     ) -> list[tuple[StepKey, StepKey]]:
    numbers_b = {k.iteration: k for k in keys_b}
    if all(k.iteration in numbers_b for k in keys_a):
        return [(k, numbers_b[k.iteration]) for k in keys_a]
    if keys_a and keys_b:
        notes.append(f"graph {keys_a[0].graph}: iteration numbers differ between the runs; paired by position "
                     f"(A {keys_a[0].iteration}.. with B {keys_b[0].iteration}..)")
    return list(zip(keys_a, keys_b))


# ----- one step -----------------------------------------------------------------------------------------------
class StepComparer:
    """Compares steps of two dumps; node pairings are computed once per pair of graphs."""

    def __init__(self, dump_a: DumpDir, dump_b: DumpDir, tolerance: Tolerance):
        self.dump_a, self.dump_b, self.tolerance = dump_a, dump_b, tolerance
        self._node_pairs: dict[tuple[int, int, int, int], dict[str, str] | None] = {}

    def graphs(self, key_a: StepKey, key_b: StepKey) -> tuple[Graph | None, Graph | None]:
        return self.dump_a.graph(key_a.rank, key_a.graph), self.dump_b.graph(key_b.rank, key_b.graph)

    def pairing(self, key_a: StepKey, key_b: StepKey) -> StepPairing:
        """The tensors of a pair of steps, paired."""
        graph_a, graph_b = self.graphs(key_a, key_b)
        cache = (key_a.rank, key_a.graph, key_b.rank, key_b.graph)
        if cache not in self._node_pairs:
            self._node_pairs[cache] = pair_nodes(graph_a, graph_b) if graph_a and graph_b else None
        return pair_step(self.dump_a.tensors(key_a), self.dump_b.tensors(key_b), self._node_pairs[cache])

    def metrics(self, a: TensorEntry, b: TensorEntry, errors: list[str]) -> PairMetrics | None:
        """Compare two tensors (by their statistics when a side holds statistics only, e.g. a statistic.csv
        dump); an unreadable file is recorded in ``errors`` and gives None."""
        try:
            if a.stats is not None or b.stats is not None:
                return compare_statistics(_statistics(a), _statistics(b), self.tolerance)
            return compare_arrays(a.load(), b.load(), self.tolerance)
        except MsdbgError as exc:
            errors.append(str(exc))
        except (ValueError, TypeError) as exc:
            errors.append(f"tensor {a.label} / {b.label}: cannot be compared ({exc})")
        return None

    def compare(self, key_a: StepKey, key_b: StepKey, result: CompareResult) -> None:
        """Compare one pair of steps into ``result``: tensor pairs, first divergences, unpaired nodes."""
        pairing = self.pairing(key_a, key_b)
        _note_unpaired(pairing.only_a, result.unpaired_a)
        _note_unpaired(pairing.only_b, result.unpaired_b)
        compared = [TensorPair(a, b, self.metrics(a, b, result.errors))
                    for a, b in pairing.pairs if a.io == "output"]
        result.pairs.extend(compared)
        graph_a, graph_b = self.graphs(key_a, key_b)
        for pair in first_divergences([p for p in compared if p.diverged], graph_a, graph_b, pairing.nodes):
            result.divergences.append(self.explain(pair, pairing, graph_a, graph_b, result.errors))

    def explain(self, pair: TensorPair, pairing: StepPairing, graph_a: Graph | None, graph_b: Graph | None,
                errors: list[str]) -> Divergence:
        """The divergence at a pair: source lines, its inputs side by side, and the cause."""
        inputs = self._inputs(pair, pairing, graph_a, graph_b, errors)
        differing = [i.slot for i in inputs if i.metrics is not None and not i.metrics.within]
        if differing:
            cause = f"input {differing[0]}"
        elif inputs and all(i.metrics is not None for i in inputs):
            cause = CAUSE_OP
        else:
            cause = CAUSE_UNKNOWN
        return Divergence(pair, _source(pair.a.graph_node), _source(pair.b.graph_node), cause, inputs)

    def _inputs(self, pair: TensorPair, pairing: StepPairing, graph_a: Graph | None, graph_b: Graph | None,
                errors: list[str]) -> list[InputComparison]:
        """The node's input slots, both sides: dumped input tensors compared, producers named from the graphs."""
        node_a, node_b = pair.a.graph_node, pair.b.graph_node
        if pair.a.file.is_parameter:
            return []
        dumped_a, dumped_b = _dumped_inputs(self.dump_a, pair.a), _dumped_inputs(self.dump_b, pair.b)
        slots = set(dumped_a) | set(range(len(node_a.inputs) if node_a is not None else 0))
        compared, paired_b = [], set(pairing.nodes.values())
        for slot in sorted(slots):
            producer_a = _producer(graph_a, node_a, slot)
            producer_b = _producer(graph_b, node_b, slot)
            note = _only_on_one_side(producer_a, producer_b, pairing.nodes, paired_b) if pairing.nodes else None
            if slot in dumped_a and slot in dumped_b:
                metrics = self.metrics(dumped_a[slot], dumped_b[slot], errors)
            else:
                if producer_a is None and slot not in dumped_a:
                    continue  # a constant, not dumped
                metrics, note = None, "not dumped (a dump with input_output 0 holds op inputs)"
            names = _name(producer_a, graph_a), _name(producer_b, graph_b)
            compared.append(InputComparison(slot, *names, metrics, note))
        return compared


def _dumped_inputs(dump: DumpDir, entry: TensorEntry) -> dict[int, TensorEntry]:
    """The input tensors dumped for the node of an output tensor, by slot (found by file name: no graph needed)."""
    return dump.derived(entry.step, _inputs_by_file_name).get((entry.op_type, entry.file.op_name), {})


def _inputs_by_file_name(entries: list[TensorEntry]) -> dict[tuple[str, str], dict[int, TensorEntry]]:
    """A step's input tensors by (op type, file op name) and slot; built once per step listing."""
    index: dict[tuple[str, str], dict[int, TensorEntry]] = {}
    for entry in entries:
        if entry.io == "input":
            index.setdefault((entry.op_type, entry.file.op_name), {})[entry.slot] = entry
    return index


def _statistics(entry: TensorEntry) -> TensorStats:
    """The entry's statistics: from a statistics-only dump as they are, else computed from its data."""
    if entry.stats is not None:
        return entry.stats
    return compute_stats(entry.load(), STATISTICS_NEEDED, dtype_hint=entry.dtype)


def first_divergences(diverged: list[TensorPair], graph_a: Graph | None, graph_b: Graph | None,
                      nodes: dict[str, str]) -> list[TensorPair]:
    """The diverged pairs none of whose graph ancestors (in A's graph, and in B's where it pairs) diverged, one per
    node, in execution order. Tensors not placed in the graph, and parameters no known kernel updates, are never
    taken for having no ancestors: they count only when nothing else qualifies. Without graphs, the first diverged
    pair in execution order."""
    placed = [p for p in diverged if p.a.graph_node is not None]
    if graph_a is None or not placed:
        ordered = sorted(diverged, key=_order)
        return ordered[:1] if graph_a is None else _one_per_node(ordered)
    names_a = {p.a.graph_node.name for p in placed}
    below = nodes_below_others(names_a, graph_a)
    if graph_b is not None:
        names_b = {p.b.graph_node.name for p in placed if p.b.graph_node is not None}
        below_b = nodes_below_others(names_b, graph_b)
        below |= {a for a, b in nodes.items() if b in below_b}
    roots = [p for p in placed if p.a.graph_node.name not in below]
    # a weight or state written by a kernel the graph does not name as its updater (BatchNorm's moving statistics)
    # has unknown ancestors: like an unplaced tensor, it counts only when nothing else is a root
    roots = [p for p in roots if not _written_by_unknown_kernel(p, graph_a)] or roots
    return _one_per_node(sorted(roots, key=_order))


def _written_by_unknown_kernel(pair: TensorPair, graph: Graph) -> bool:
    node = pair.a.graph_node
    return node.is_parameter and pair.a.category != "input" and not graph.updaters.get(node.name)


def _one_per_node(pairs: Iterable[TensorPair]) -> list[TensorPair]:
    seen, result = set(), []
    for pair in pairs:
        if pair.a.node not in seen:
            seen.add(pair.a.node)
            result.append(pair)
    return result


def _order(pair: TensorPair) -> tuple[int, int, int]:
    return pair.a.order, pair.a.file.timestamp, pair.a.slot


def _producer(graph: Graph | None, node: Node | None, slot: int) -> Node | None:
    """The node feeding an input slot, looking through Load/Depend but not through Casts (to show them)."""
    if graph is None or node is None or slot >= len(node.inputs):
        return None
    current = graph.nodes.get(node.inputs[slot])
    while current is not None and current.op_type in ("Load", "Depend", "TupleGetItem") and current.inputs:
        current = graph.nodes.get(current.inputs[0])
    return current


def _only_on_one_side(producer_a: Node | None, producer_b: Node | None, paired_a: dict[str, str],
                      paired_b: set[str]) -> str | None:
    """A note when an input comes from a node that only one run has (a Cast of mixed precision, an epsilon's Add)."""
    notes = []
    if producer_a is not None and not producer_a.is_parameter and producer_a.name not in paired_a:
        notes.append(f"{producer_a.op_type} {producer_a.full_name} is only in A")
    if producer_b is not None and not producer_b.is_parameter and producer_b.name not in paired_b:
        notes.append(f"{producer_b.op_type} {producer_b.full_name} is only in B")
    return "; ".join(notes) or None


def _name(node: Node | None, graph: Graph | None) -> str | None:
    """How an input's producer is shown: None for a constant, ``(no graph)`` when there is no graph to ask."""
    if graph is None:
        return "(no graph)"
    if node is None:
        return None
    return node.name if node.is_parameter else f"{node.op_type} {node.full_name}"


def _source(node: Node | None) -> str | None:
    line = node.user_source() if node is not None else None
    return str(line) if line is not None else None


def _note_unpaired(entries: list[TensorEntry], into: dict[tuple, dict]) -> None:
    """Record the nodes of unpaired tensors once per (rank, graph, node)."""
    for entry in entries:
        key = (entry.step.rank, entry.step.graph, entry.node)
        if key not in into:
            into[key] = {"rank": entry.step.rank, "graph": entry.step.graph, "node": entry.node,
                         "op_type": entry.op_type, "placed": entry.graph_node is not None}


# ----- whole runs ---------------------------------------------------------------------------------------------
def compare_runs(dump_a: DumpDir, dump_b: DumpDir, tolerance: Tolerance, *, rank: int | None = None,
                 steps: StepSpec | None = None,
                 progress: Callable[[list], Iterable] = lambda keys: keys) -> CompareResult:
    """Compare every paired step of two dumps."""
    result = CompareResult(tolerance)
    result.steps, result.notes = pair_steps(dump_a, dump_b, rank=rank, steps=steps)
    comparer = StepComparer(dump_a, dump_b, tolerance)
    for key_a, key_b in progress(result.steps):
        comparer.compare(key_a, key_b, result)
    for (side, dump) in (("A", dump_a), ("B", dump_b)):
        for (graph_rank, graph_id), problem in dump.graph_errors.items():
            result.notes.append(f"run {side} rank {graph_rank} graph {graph_id}: {problem}; tensors pair by file "
                                "name only")
    return result
