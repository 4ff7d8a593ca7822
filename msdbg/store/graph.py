"""One kernel graph of a dump: nodes, edges, parameters, categories and source lines.

Built from the files MindSpore writes beside the tensors of each rank:
``graphs/ms_output_trace_code_graph_{g}.pb`` (nodes with inputs, scope and full name),
``graphs/ms_output_trace_code_graph_{g}.ir`` (``# In file path:line`` source traces, parameter kinds) and
``execution_order/ms_execution_order_graph_{g}.csv`` (the order kernels ran).
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass, field
from typing import Iterable

from msdbg.store.filenames import dump_op_name, dump_param_name
from msdbg.store.pbreader import GraphError, read_rows

#: Optimizer update ops: op type -> input slot of the gradient (the variable is slot 0).
OPTIMIZER_GRAD_SLOT = {
    "Adam": 9,
    "AdamWeightDecay": 8,
    "ApplyAdam": 9,
    "ApplyAdamWithAmsgrad": 9,
    "ApplyMomentum": 3,
    "SGD": 1,
    "ApplyGradientDescent": 2,
    "ApplyProximalGradientDescent": 4,
    "ApplyAdagrad": 3,
    "ApplyAdagradV2": 3,
    "ApplyAdadelta": 6,
    "ApplyAdaMax": 8,
    "ApplyRMSProp": 4,
    "ApplyCenteredRMSProp": 4,
    "ApplyFtrl": 3,
    "ApplyProximalAdagrad": 5,
    "ApplyPowerSign": 6,
    "ApplyAddSign": 6,
    "LARSUpdate": 1,
}
#: Ops that write their first input in place but are not optimizers' main update.
ASSIGN_OPS = {"Assign", "AssignAdd", "AssignSub"}
#: Graph plumbing that forwards its first input and is never a kernel with a dump of its own.
PASSTHROUGH_OPS = {"Load", "Depend", "UpdateState", "MakeTuple", "TupleGetItem", "Cast", "identity", "Identity"}
#: Parameter names (or prefixes) MindSpore's optimizers create for their state.
_OPTIMIZER_STATE_NAMES = {"global_step", "beta1_power", "beta2_power", "learning_rate", "momentum", "lr",
                          # loss scalers: ms.amp.DynamicLossScaler, TrainOneStepWithLossScaleCell and its update cell
                          "scale_value", "scale_sense", "loss_scale", "current_iterator_step",
                          "last_overflow_iterator_step"}
_OPTIMIZER_STATE_PREFIXES = ("moment1.", "moment2.", "moments.", "accum.", "mean_square.", "mean_grad.",
                             "vhat.", "linear.", "accum_update.", "exp_avg.", "exp_avg_sq.")

CATEGORIES = ("weight", "gradient", "activation", "optimizer_state", "input")


@dataclass(frozen=True)
class SourceLine:
    """One ``# In file`` trace line of the IR."""

    path: str
    line: int
    code: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}  {self.code.strip()}"


@dataclass(eq=False)
class Node:
    """A node of the kernel graph: a CNode (op) or a Parameter."""

    name: str
    full_name: str
    op_type: str
    scope: str
    inputs: list[str] = field(default_factory=list)
    shape: tuple[int, ...] = ()
    source: list[SourceLine] = field(default_factory=list)
    dtype: str = ""  # the output's element type ("int32", "float32"), "" when unknown or not a tensor

    @property
    def is_parameter(self) -> bool:
        return self.op_type == "Parameter"

    def user_source(self) -> SourceLine | None:
        """The innermost trace line that is in the user's code rather than in MindSpore."""
        for entry in reversed(self.source):
            if not is_mindspore_path(entry.path):
                return entry
        return self.source[-1] if self.source else None


@dataclass(frozen=True)
class TensorRole:
    """What a dumped tensor is, in the user's terms."""

    category: str
    param: str | None = None


class Graph:
    """The dataflow of one kernel graph, indexed for dump files, trace-back and naming."""

    def __init__(self, graph_id: int, nodes: list[Node], param_kinds: dict[str, bool], exec_order: list[str]):
        self.graph_id = graph_id
        self.nodes: dict[str, Node] = {n.name: n for n in nodes}
        self.by_full_name: dict[str, Node] = {n.full_name: n for n in nodes}
        self._by_dump_name: dict[str, Node] = {}
        for node in nodes:
            key = dump_param_name(node.name) if node.is_parameter else dump_op_name(node.full_name)
            self._by_dump_name.setdefault(key, node)
        self.exec_index: dict[str, int] = {name: i for i, name in enumerate(exec_order)}
        self._is_ref = param_kinds
        self.optimizer_ops: dict[str, Node] = {n.name: n for n in nodes if self._is_update_op(n)}
        self.param_category: dict[str, str] = self._classify_parameters()
        self.updated_params, self.gradient_buffers = self._optimizer_operands()
        self.gradient_of: dict[str, str] = self._find_gradients()
        self.updaters: dict[str, list[str]] = self._find_updaters()
        self._dependencies: dict[str, tuple[str, ...]] = self._find_dependencies()
        self._dependents: dict[str, list[str]] = _reverse(self._dependencies)
        self._dependency_order: list[str] = _dependency_order(self._dependencies, self._dependents)
        self._position: dict[str, int] = {name: i for i, name in enumerate(self._dependency_order)}
        self._nodes_by_last_part: dict[str, list[Node]] = _group_nodes_by_last_part(self.nodes.values())
        self._ancestor_cache: dict[str, frozenset[str]] = {}
        self._roles: dict[tuple[str, str], TensorRole] = {}
        self._consumers: dict[str, list[Node]] | None = None
        self._readers: dict[str, tuple[Node, int]] | None = None

    @property
    def param_kinds(self) -> dict[str, bool]:
        """For each parameter of the .ir, whether it is a Ref (state) rather than data."""
        return self._is_ref

    # ----- lookup -------------------------------------------------------------------------------
    def node_for_dump(self, op_type: str, op_name: str) -> Node | None:
        """The node a dump file belongs to (``Parameter.fc1_weight`` or ``MatMul.Default_MatMul-op0``)."""
        node = self._by_dump_name.get(op_name)
        if node is not None and (node.is_parameter == (op_type == "Parameter")):
            return node
        if op_type == "Parameter":  # MindSpore 2.0 keeps the parameter's dots: Parameter.fc1.weight
            node = self.nodes.get(op_name)
            return node if node is not None and node.is_parameter else None
        return None

    def nodes_with_suffix(self, suffix: str) -> list[Node]:
        """Nodes whose full name ends with ``/`` + ``suffix`` (``fc1-Dense/MatMul-op0``, ``Log-op0``)."""
        bucket = self._nodes_by_last_part.get(suffix.rsplit("/", 1)[-1], [])
        return [node for node in bucket if node.full_name.endswith("/" + suffix)]

    def role(self, node: Node, io: str) -> TensorRole:
        """Category and parameter name of a node's dumped tensor (kept: each step's listing asks again)."""
        role = self._roles.get((node.name, io))
        if role is None:
            role = self._roles[(node.name, io)] = self._find_role(node, io)
        return role

    def _find_role(self, node: Node, io: str) -> TensorRole:
        if node.is_parameter:
            return TensorRole(self.param_category.get(node.name, "weight"), node.name)
        if io == "output" and node.name in self.gradient_of:
            return TensorRole("gradient", self.gradient_of[node.name])
        if node.name in self.optimizer_ops:
            return TensorRole("optimizer_state", self._input_param(node, 0))
        return TensorRole("activation", None)

    # ----- trace-back ---------------------------------------------------------------------------
    def ancestors(self, name: str) -> frozenset[str]:
        """Names of every node the given node's value depends on in this step.

        A weight or state parameter node stands for the value written at the end of the step, so its ancestors
        are the ops that update it; forward reads of it see the value from before the step and add no edge.
        Data inputs are never updated, so reading one is an edge like any other.
        """
        cached = self._ancestor_cache.get(name)
        if cached is not None:
            return cached
        seen: set[str] = set()
        stack = list(self.dependencies(name))
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(self._dependencies[current])
        result = frozenset(seen)
        self._ancestor_cache[name] = result
        return result

    def dependencies(self, name: str) -> tuple[str, ...]:
        """The nodes whose values the given node's value is computed from directly (the edges of ancestors())."""
        return self._dependencies.get(name, ())

    def dependents(self, name: str) -> list[str]:
        """The nodes whose values are computed directly from the given node's value (ancestors() edges reversed)."""
        return self._dependents.get(name, [])

    def dependency_order(self, until: str) -> list[str]:
        """Nodes in an order where each comes after its dependencies, up to ``until`` (none if it is not a node).

        Nodes on or below a cycle (kernel graphs have none) come last, in graph order, so there a dependency may
        come after the node.
        """
        return self._dependency_order[:self._position.get(until, -1) + 1]

    def consumers(self, name: str) -> list[Node]:
        """Nodes that take the given node as an input."""
        if self._consumers is None:
            self._consumers = {}
            for node in self.nodes.values():
                for inp in dict.fromkeys(node.inputs):
                    self._consumers.setdefault(inp, []).append(node)
        return self._consumers.get(name, [])

    def order_of(self, node: Node) -> int:
        """Position in execution order; parameters (written at step end) come after every kernel."""
        if node.is_parameter:
            return len(self.exec_index) + 1
        return self.exec_index.get(node.full_name, len(self.exec_index))

    def _find_dependencies(self) -> dict[str, tuple[str, ...]]:
        """The edges of ancestors(): a parameter's updaters; an op's inputs but weights and optimizer state.

        Edges hold the node names' own string objects, so the trace-back's lookups match by identity.
        """
        data = {name: name for name, node in self.nodes.items()
                if not node.is_parameter or self.param_category.get(name) == "input"}
        dependencies = {}
        for name, node in self.nodes.items():
            if node.is_parameter:
                dependencies[name] = tuple(self.updaters.get(name, ()))
            else:
                dependencies[name] = tuple([data[i] for i in node.inputs if i in data])
        return dependencies

    # ----- classification -----------------------------------------------------------------------
    def _is_update_op(self, node: Node) -> bool:
        if node.is_parameter or not node.inputs:
            return False
        if node.op_type in OPTIMIZER_GRAD_SLOT:
            return True
        return node.op_type.startswith("Apply") and self._input_param(node, 0) is not None

    def _input_param(self, node: Node, slot: int) -> str | None:
        if slot >= len(node.inputs):
            return None
        source = self.nodes.get(node.inputs[slot])
        return source.name if source is not None and source.is_parameter else None

    def resolve(self, name: str) -> Node | None:
        """Follow graph plumbing (Load, Depend, ...) back to the node that computes a value."""
        node = self.nodes.get(name)
        while node is not None and node.op_type in PASSTHROUGH_OPS and node.inputs:
            node = self.nodes.get(node.inputs[0])
        return node

    def _classify_parameters(self) -> dict[str, str]:
        state: set[str] = set()
        variables: set[str] = set()
        for op in self.optimizer_ops.values():
            grad_slot = OPTIMIZER_GRAD_SLOT.get(op.op_type)
            for slot, inp in enumerate(op.inputs):
                source = self.nodes.get(inp)
                if source is None or not source.is_parameter:
                    continue
                if slot == 0:
                    variables.add(source.name)
                elif slot != grad_slot:
                    state.add(source.name)
        for node in self.nodes.values():
            if node.op_type in ASSIGN_OPS and self.optimizer_ops:
                target = self._input_param(node, 0)
                if target is not None and _size(self.nodes[target].shape) <= 1:
                    state.add(target)
        read_as_state = self._params_read_as_state()
        categories = {}
        for node in self.nodes.values():
            if not node.is_parameter:
                continue
            if node.name in variables:
                categories[node.name] = "weight"
            elif node.name in state or is_optimizer_state_name(node.name):
                categories[node.name] = "optimizer_state"
            elif not self._is_ref.get(node.name, node.name in read_as_state):
                categories[node.name] = "input"
            else:
                categories[node.name] = "weight"
        return categories

    def _optimizer_operands(self) -> tuple[frozenset[str], frozenset[str]]:
        """Parameters optimizer ops update (slot 0), and parameters fed to them as the gradient: accumulation
        buffers (gradient accumulation), not trained weights."""
        updated, buffers = set(), set()
        for op in self.optimizer_ops.values():
            target = self._input_param(op, 0)
            if target is not None:
                updated.add(target)
            slot = OPTIMIZER_GRAD_SLOT.get(op.op_type)
            source = self.resolve(op.inputs[slot]) if slot is not None and slot < len(op.inputs) else None
            if source is not None and source.is_parameter:
                buffers.add(source.name)
        return frozenset(updated), frozenset(buffers)

    def _params_read_as_state(self) -> set[str]:
        """Without the IR: parameters read through Load or written in place hold state, not data."""
        return {node.inputs[0] for node in self.nodes.values()
                if node.inputs and (node.op_type == "Load" or node.op_type in ASSIGN_OPS
                                    or node.name in self.optimizer_ops)}

    def _find_gradients(self) -> dict[str, str]:
        """Map the node whose output is fed to an optimizer as a gradient to that parameter's name."""
        gradients: dict[str, str] = {}
        for op in self.optimizer_ops.values():
            param = self._input_param(op, 0)
            slot = OPTIMIZER_GRAD_SLOT.get(op.op_type)
            if param is None:
                continue
            if slot is None or slot >= len(op.inputs):
                slot = self._guess_gradient_slot(op, param)
            if slot is None:
                continue
            producer = self.resolve(op.inputs[slot])
            if producer is not None and not producer.is_parameter:
                gradients.setdefault(producer.name, param)
        return gradients

    def _guess_gradient_slot(self, op: Node, param: str) -> int | None:
        shape = self.nodes[param].shape
        for slot, inp in enumerate(op.inputs[1:], start=1):
            producer = self.resolve(inp)
            if producer is not None and producer.scope.startswith("Gradients") and producer.shape == shape:
                return slot
        return None

    def _find_updaters(self) -> dict[str, list[str]]:
        """The ops that write each parameter: an Assign's target; an optimizer op's variable and the state it updates
        in place with it (moments, accumulators: parameter inputs of the variable's shape, not the gradient)."""
        updaters: dict[str, list[str]] = {}
        for node in self.nodes.values():
            if node.name in self.optimizer_ops or node.op_type in ASSIGN_OPS:
                target = self._input_param(node, 0)
                if target is None:
                    continue
                updaters.setdefault(target, []).append(node.name)
                if node.name in self.optimizer_ops:
                    grad_slot = OPTIMIZER_GRAD_SLOT.get(node.op_type)
                    shape = self.nodes[target].shape
                    for slot in range(1, len(node.inputs)):
                        state = self._input_param(node, slot)
                        if state is not None and slot != grad_slot and shape and self.nodes[state].shape == shape:
                            updaters.setdefault(state, []).append(node.name)
        return updaters

    def initial_value_reader(self, param: str) -> tuple[Node, int] | None:
        """A kernel (not an update op) that reads the parameter before this step's update, and its input slot."""
        if self._readers is None:
            self._readers = self._first_readers()
        return self._readers.get(param)

    def _first_readers(self) -> dict[str, tuple[Node, int]]:
        """For every parameter, the first kernel (and slot) that reads it; one pass over the graph."""
        readers: dict[str, tuple[Node, int]] = {}
        for node in self.nodes.values():
            if node.is_parameter or node.name in self.optimizer_ops or node.op_type in ASSIGN_OPS | PASSTHROUGH_OPS:
                continue
            if self.exec_index and node.full_name not in self.exec_index:
                continue
            for slot, inp in enumerate(node.inputs):
                resolved = self.resolve(inp)
                if resolved is not None and resolved.is_parameter:
                    readers.setdefault(resolved.name, (node, slot))
        return readers


def _reverse(edges: dict[str, tuple[str, ...]]) -> dict[str, list[str]]:
    reverse: dict[str, list[str]] = {}
    for target, sources in edges.items():
        for source in sources:
            reverse.setdefault(source, []).append(target)
    return reverse


def _dependency_order(dependencies: dict[str, tuple[str, ...]], dependents: dict[str, list[str]]) -> list[str]:
    """Kahn's algorithm; the nodes it cannot place (on or below a cycle) follow in their original order."""
    waiting = {name: len(inputs) for name, inputs in dependencies.items()}
    order = [name for name, count in waiting.items() if count == 0]
    for name in order:  # grows while it is read
        for below in dependents.get(name, ()):
            waiting[below] -= 1
            if waiting[below] == 0:
                order.append(below)
    if len(order) < len(dependencies):
        placed = set(order)
        order.extend(name for name in dependencies if name not in placed)
    return order


def _group_nodes_by_last_part(nodes: Iterable[Node]) -> dict[str, list[Node]]:
    """Nodes by the last ``/`` part of their full name (what a ``/`` suffix of the full name ends with)."""
    groups: dict[str, list[Node]] = {}
    for node in nodes:
        groups.setdefault(node.full_name.rsplit("/", 1)[-1], []).append(node)
    return groups


def _size(shape: tuple[int, ...]) -> int:
    total = 1
    for dim in shape:
        total *= dim
    return total


def is_optimizer_state_name(name: str) -> bool:
    return name in _OPTIMIZER_STATE_NAMES or name.startswith(_OPTIMIZER_STATE_PREFIXES)


def is_mindspore_path(path: str) -> bool:
    parts = path.replace("\\", "/").split("/")
    return "mindspore" in parts and ("site-packages" in parts or "dist-packages" in parts)


# ----- readers ----------------------------------------------------------------------------------
_IR_FULLNAME = re.compile(r"#\s*Fullname with scope:\s*\((?P<name>[^)]*)\)")
_IR_SOURCE = re.compile(r"#\s*In file (?P<path>.+?):(?P<line>\d+)(?:~\d+)?(?:,\s*[\d~]+)?/(?P<code>.*)/\s*$", re.ASCII)
_IR_PARAM = re.compile(r"^%para\d+_(?P<name>\S+?):\s*<(?P<kind>Ref\[|Tensor|[A-Za-z]+)")
_IR_NODE_START = re.compile(r"^\s*(%\d+\(|Return\(|subgraph |})")


def read_graph(rank_dir: str, graph_id: int) -> Graph:
    """Read graph ``graph_id`` of a rank directory; raise GraphError naming the file if it is unusable."""
    pb_path = os.path.join(rank_dir, "graphs", f"ms_output_trace_code_graph_{graph_id}.pb")
    ir_path = os.path.join(rank_dir, "graphs", f"ms_output_trace_code_graph_{graph_id}.ir")
    order_path = os.path.join(rank_dir, "execution_order", f"ms_execution_order_graph_{graph_id}.csv")
    nodes = _read_pb_nodes(pb_path)
    try:
        sources, param_kinds = _read_ir(ir_path) if os.path.exists(ir_path) else ({}, {})
        order = _read_exec_order(order_path)
    except OSError as exc:
        raise GraphError(f"graph file {exc.filename}: {exc.strerror}", unreadable=True) from None
    for node in nodes:
        node.source = sources.get(node.full_name, [])
    return Graph(graph_id, nodes, param_kinds, order)


def _read_pb_nodes(path: str) -> list[Node]:
    return [Node(name, full_name, op_type, scope, list(inputs), tuple(shape), dtype=dtype)
            for name, full_name, op_type, scope, inputs, shape, dtype in read_rows(path)]


def _read_ir(path: str) -> tuple[dict[str, list[SourceLine]], dict[str, bool]]:
    """Source traces per node full name, and for each parameter whether it is a Ref (stateful)."""
    sources: dict[str, list[SourceLine]] = {}
    param_kinds: dict[str, bool] = {}
    current: list[SourceLine] | None = None
    _check_regular(path)
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            stripped = line.strip()
            if stripped.startswith("%para"):
                match = _IR_PARAM.match(stripped)
                if match:
                    param_kinds[match["name"]] = match["kind"] == "Ref["
                continue
            if _IR_NODE_START.match(line):
                current = None
                continue
            match = _IR_FULLNAME.search(stripped)
            if match:
                current = sources.setdefault(match["name"], [])
                continue
            if current is not None:
                match = _IR_SOURCE.search(stripped)
                if match:
                    code = match["code"].split("/<~~", 1)[0]  # drop MindSpore's "line shared by nodes" remark
                    current.append(SourceLine(match["path"], int(match["line"]), code))
    return sources, param_kinds


def _check_regular(path: str) -> None:
    """Refuse a folder, FIFO or device where a text file belongs (a FIFO would block the read)."""
    if not os.path.isfile(path):
        raise OSError(errno.EINVAL, "not a regular file", path)


def _read_exec_order(path: str) -> list[str]:
    if not os.path.exists(path):
        return []
    _check_regular(path)
    with open(path, encoding="utf-8", errors="replace") as handle:
        lines = [line.strip() for line in handle]
    return [line for line in lines[1:] if line]
