"""User steps from graph families, on the layout MindSpore 2.10 writes (measured, see store/families.py)."""

from types import SimpleNamespace

from msdbg.store.dumpdir import StepKey
from msdbg.store.families import EVAL, TRAIN, GraphFamilies


class _Dump:
    """The few DumpDir methods GraphFamilies uses, over a real folder layout."""

    def __init__(self, root, folders, graphs):
        self.root, self.folders, self._graphs = root, folders, graphs

    def rank_dir(self, rank):
        return str(self.root / f"rank_{rank}")

    def steps(self):
        return sorted(StepKey(0, "Net", g, i) for g, i in self.folders)

    def graph(self, rank, graph_id):
        return self._graphs.get(graph_id)


def _layout(tmp_path, roots, graph_ids):
    """``roots``: root graph id -> the iterations its global execution order file lists, as they ran."""
    order, graphs = tmp_path / "rank_0" / "execution_order", tmp_path / "rank_0" / "graphs"
    order.mkdir(parents=True)
    graphs.mkdir()
    for root, iterations in dict(roots).items():
        (order / f"ms_global_execution_order_graph_{root}.csv").write_text("".join(f"{i}\n" for i in iterations))
    for graph in graph_ids:
        (graphs / f"ms_output_trace_code_graph_{graph}.pb").write_bytes(b"")


def _graph(optimizer=False, gradients=False):
    name = "Gradients/Default/MatMul-op0" if gradients else "Default/MatMul-op0"
    return SimpleNamespace(optimizer_ops={"opt": 1} if optimizer else {}, nodes={"n": SimpleNamespace(full_name=name)},
                           updated_params=frozenset({"w"} if optimizer else ()), gradient_buffers=frozenset())


def test_control_flow_graphs_belong_to_their_root_and_share_its_steps(tmp_path):
    """An AMP jit step: root 0 (forward, backward, all_finite), branch 2 (update) or 3 (skip); then an eval root 4
    whose first call takes the shared counter's next value (4) and later ones restart at 1 (measured: Model.eval
    after Model.train lists ``4 1 2 3``)."""
    _layout(tmp_path, {0: range(4), 4: [4, 1]}, [0, 1, 2, 3, 4])
    folders = [(0, i) for i in range(4)] + [(3, 0), (3, 1), (2, 2), (2, 3), (4, 4), (4, 1)]
    graphs = {0: _graph(gradients=True), 2: _graph(optimizer=True), 3: _graph(), 4: _graph()}
    families = GraphFamilies(_Dump(tmp_path, folders, graphs))
    assert [families.root_of(0, g) for g in range(5)] == [0, 0, 0, 0, 4]
    assert families.members(0, 0) == [0, 1, 2, 3]
    steps = {(g, i): families.user_step(StepKey(0, "Net", g, i)) for g, i in folders}
    assert {s.phase for (g, _), s in steps.items() if g < 4} == {TRAIN}
    assert [steps[(3, 1)].number, steps[(2, 2)].number] == [1, 2], "a branch's folder is its root's step"
    assert [steps[(4, 4)].phase, steps[(4, 4)].number, steps[(4, 1)].number] == [EVAL, 0, 1]
    assert len({s for (g, _), s in steps.items() if g < 4}) == 4, "4 user steps, not 8 graph runs"
    assert families.trained(0, 0) == frozenset({"w"})


def test_without_global_order_files_each_graph_is_its_own_family(tmp_path):
    """Older dumps: no global execution order; numbering is the position among the graph's folders."""
    _layout(tmp_path, {}, [0, 1])
    folders = [(0, 3), (0, 4), (1, 7)]
    families = GraphFamilies(_Dump(tmp_path, folders, {0: _graph(optimizer=True), 1: _graph()}))
    assert families.root_of(0, 1) == 1
    assert families.user_step(StepKey(0, "Net", 0, 4)).number == 1
    assert families.user_step(StepKey(0, "Net", 1, 7)).phase == EVAL


def test_graphs_compiled_later_are_placed_when_they_appear(tmp_path):
    _layout(tmp_path, {0: [0]}, [0])
    families = GraphFamilies(_Dump(tmp_path, [(0, 0)], {0: _graph(optimizer=True)}))
    assert families.root_of(0, 0) == 0
    (tmp_path / "rank_0" / "execution_order" / "ms_global_execution_order_graph_1.csv").write_text("1\n")
    (tmp_path / "rank_0" / "graphs" / "ms_output_trace_code_graph_1.pb").write_bytes(b"")
    assert families.root_of(0, 1) == 1


def test_weight_frozen_counts_only_steps_where_trained_weights_changed():
    """Warm-up at lr 0 and accumulation steps change nothing: they do not count; a weight left out of the optimizer
    hits once, at the third step in which the trained weights changed."""
    from msdbg.engine.frozen import FrozenState, review_step
    from msdbg.engine.watchpoints import WatchpointList
    from msdbg.store.families import UserStep

    watchpoint = WatchpointList().add("weight_frozen", {}, None)
    entry = {name: SimpleNamespace(param=name, graph_node=None) for name in ("w", "frozen", "acc.w")}
    state, hits_at = FrozenState(), {}
    # step: (w changed, acc.w changed); "frozen" never changes
    for number, (w_changed, acc_changed) in enumerate([(False, True), (False, True), (True, True), (False, True),
                                                       (True, True), (True, True), (True, True)]):
        votes = [(watchpoint, entry["w"], not w_changed), (watchpoint, entry["frozen"], True),
                 (watchpoint, entry["acc.w"], not acc_changed)]
        hits = review_step(UserStep(0, 0, TRAIN, number), votes, state, frozenset({"w"}), frozenset({"acc.w"}))
        hits_at.update({number: [h.entry.param for h in hits]} if hits else {})
    assert hits_at == {5: ["frozen"]}, "steps 2, 4 and 5 changed w; acc.w is a buffer, w is never frozen"
