"""Graph patterns behind the accuracy guide's structural causes: found from the graph alone, without hits."""

from __future__ import annotations

import math

from msdbg.engine.loss import loss_node
from msdbg.store.graph import ASSIGN_OPS, OPTIMIZER_GRAD_SLOT, PASSTHROUGH_OPS, Graph, Node

#: Losses that apply sigmoid / softmax to their first input themselves (they expect logits).
SIGMOID_LOSS_OPS = {"BCEWithLogitsLoss", "BinaryCrossEntropyWithLogits", "SigmoidCrossEntropyWithLogits"}
SOFTMAX_LOSS_OPS = {"SoftmaxCrossEntropyWithLogits", "SparseSoftmaxCrossEntropyWithLogits", "LogSoftmax"}
#: Kernels that make a constant: a gradient made by one of them did not come from the loss.
CONSTANT_OPS = {"ZerosLike", "Zeros", "Fill", "FillV2", "OnesLike"}
#: Ops that normalise their input: the scale of the weights before them does not reach their output.
NORMALISING_OPS = {"BatchNorm", "LayerNorm", "LayerNormV3", "GroupNorm", "InstanceNorm", "L2Normalize"}


def activation_into_loss(graphs: list[Graph], activation: str, losses: set[str]) -> list[str]:
    """``activation`` outputs fed (through graph plumbing) as the first input of an op in ``losses``."""
    found = []
    for graph in graphs:
        for node in graph.nodes.values():
            if node.op_type not in losses or not node.inputs or _is_backward(node):
                continue
            producer = graph.resolve(node.inputs[0])
            if producer is not None and producer.op_type == activation:
                found.append(f"{producer.full_name} -> {node.op_type} {node.full_name}{_at(producer)}")
    return sorted(set(found))


def shared_weights(graphs: list[Graph]) -> list[str]:
    """Weights read by several forward ops of the same type: one layer instance used where several were meant
    (``[layer] * n``, the same Cell assigned twice). Different op types reading one weight (tied embeddings: a
    Gather and a MatMul; a penalty on the weights in the loss) are left alone."""
    found = []
    for graph in graphs:
        readers: dict[tuple[str, str], list[Node]] = {}
        for node in graph.nodes.values():
            if node.is_parameter or _is_backward(node) or node.name in graph.optimizer_ops \
                    or node.op_type in ASSIGN_OPS | PASSTHROUGH_OPS:
                continue
            for name in dict.fromkeys(node.inputs):
                source = graph.resolve(name)
                if source is not None and source.is_parameter and graph.param_category.get(source.name) == "weight":
                    readers.setdefault((source.name, node.op_type), []).append(node)
        for (param, op_type), nodes in sorted(readers.items()):
            if len(nodes) > 1:
                ops = ", ".join(f"{n.full_name}{_at(n)}" for n in nodes[:3])
                found.append(f"{param} is read by {len(nodes)} forward {op_type} ops: {ops}")
    return found


def constant_gradients(graphs: list[Graph]) -> list[str]:
    """Parameters whose optimizer update receives a constant as gradient: nothing they compute reaches the loss
    (an output computed and dropped, a branch cut off), so they never learn."""
    found = []
    for graph in graphs:
        for op in graph.optimizer_ops.values():
            slot = OPTIMIZER_GRAD_SLOT.get(op.op_type)
            if slot is None or slot >= len(op.inputs) or not op.inputs or op.inputs[0] not in graph.nodes:
                continue
            producer = graph.resolve(op.inputs[slot])
            if producer is None or producer.op_type in CONSTANT_OPS:
                found.append(f"{op.inputs[0]} (its {op.op_type} gets a constant gradient)")
    return sorted(set(found))


#: Element-wise ops of two tensors whose shapes NumPy-style broadcasting aligns.
BROADCASTING_OPS = {"Add", "AddV2", "Sub", "Mul", "RealDiv", "Div", "DivNoNan", "SquaredDifference", "Maximum",
                    "Minimum", "Pow", "FloorDiv", "Xdivy"}


def broadcast_into_loss(graphs: list[Graph]) -> list[str]:
    """A binary op feeding the loss whose output has more elements than each of its inputs: both were broadcast
    (e.g. predictions (N, 1) minus labels (N,) gives (N, N)), so the loss averages every pair, not each sample."""
    found = []
    for graph in graphs:
        loss = loss_node(graph)
        if loss is None:
            continue
        for name in sorted(graph.ancestors(loss.name)):
            node = graph.nodes[name]
            inputs = [graph.nodes[i] for i in node.inputs if i in graph.nodes]
            if node.op_type not in BROADCASTING_OPS or len(inputs) != 2 or not node.shape:
                continue
            sizes = [math.prod(i.shape) for i in inputs]
            if min(sizes) > 1 and math.prod(node.shape) > max(sizes):
                source = node.user_source()
                shapes = " with ".join(str(i.shape) for i in inputs)
                found.append(f"{node.op_type} {node.full_name}: {shapes} -> {node.shape}, feeding the loss "
                             f"{loss.op_type} {loss.full_name}" + (f"; at {source}" if source else ""))
    return sorted(set(found))


#: Ops that divide two tensors: on integer tensors MindSpore gives an integer quotient for FloorDiv (``//``) and
#: TruncateDiv; Div/RealDiv (``/``, ops.div) give a float one, which is then no integer division.
DIVISION_OPS = {"FloorDiv", "TruncateDiv", "Div", "RealDiv"}
#: Ops doing float arithmetic with an input: a quotient reaching one of them with a float output is used as a
#: real number (a Cast to float converts the quotient itself).
FLOAT_MATH_OPS = BROADCASTING_OPS | {"Cast", "MatMul", "BatchMatMul", "BiasAdd"}


def integer_divisions(graphs: list[Graph]) -> list[str]:
    """Integer divisions where a float one was likely meant: a forward division with an integer output, computed
    from the data, whose quotient (through ops that keep it integer) reaches float arithmetic (a Cast to float, a
    Mul/Add/MatMul with a float output) that feeds the loss. Quotients used only as integers (labels, indices,
    shape math; a OneHot, Gather or loss label input reading them) and remainders (FloorMod: meant to be integer)
    are left alone; divisions of constants (positions ``arange(n) // 2``) too, as they do not come from the data."""
    found = []
    for graph in graphs:
        loss = loss_node(graph)
        feeds_loss = graph.ancestors(loss.name) if loss is not None else None
        for node in graph.nodes.values():
            if node.op_type not in DIVISION_OPS or not _is_integer(node.dtype) or _is_backward(node) \
                    or not _from_data(graph, node):
                continue
            use = _float_use(graph, node)
            if use is None or (feeds_loss is not None and use.name not in feeds_loss):
                continue
            dtypes = " and ".join(graph.nodes[i].dtype or "?" for i in node.inputs if i in graph.nodes)
            source = node.user_source()
            found.append(f"{node.op_type} {node.full_name} of {dtypes or 'integer tensors'} -> {node.dtype}, made "
                         f"{use.dtype} by {use.op_type} {use.full_name}" + (f"; at {source}" if source else ""))
    return sorted(set(found))


def _float_use(graph: Graph, division: Node) -> Node | None:
    """The first float arithmetic op the integer quotient reaches through ops whose output stays integer."""
    pending, seen = [division], {division.name}
    while pending:
        for user in graph.consumers(pending.pop(0).name):
            if user.name in seen or _is_backward(user):
                continue
            seen.add(user.name)
            if _is_float(user.dtype) and user.op_type in FLOAT_MATH_OPS:
                return user
            if _is_integer(user.dtype) or (not user.dtype and user.op_type in PASSTHROUGH_OPS):
                pending.append(user)
    return None


def _from_data(graph: Graph, node: Node) -> bool:
    return any(graph.param_category.get(name) == "input" for name in graph.ancestors(node.name))


def _is_integer(dtype: str) -> bool:
    return dtype.startswith(("int", "uint"))


def _is_float(dtype: str) -> bool:
    return dtype.startswith(("float", "bfloat"))


def feeding_weights(graph: Graph, name: str) -> list[str]:
    """The weights (2 axes or more) read by the nearest ops on the paths into node ``name``: the layers whose scale
    sets the scale of its input (a Sigmoid's: the Dense or Conv before it, past its BiasAdd). A path through a
    normalisation (BatchNorm, LayerNorm) ends there without a weight: it resets the scale."""
    found: set[str] = set()
    seen: set[str] = set()
    stack = list(graph.nodes[name].inputs) if name in graph.nodes else []
    while stack:
        node = graph.resolve(stack.pop())
        if node is None or node.is_parameter or node.name in seen or node.op_type in NORMALISING_OPS:
            continue
        seen.add(node.name)
        weights = {source.name for source in map(graph.resolve, node.inputs)
                   if source is not None and source.is_parameter and len(source.shape) >= 2
                   and graph.param_category.get(source.name) == "weight"}
        if weights:
            found |= weights
        else:
            stack.extend(node.inputs)
    return sorted(found)


def _is_backward(node: Node) -> bool:
    return node.scope.startswith("Gradients") or node.full_name.startswith("Gradients/")


def _at(node: Node) -> str:
    source = node.user_source()
    return f" ({source.path.rsplit('/', 1)[-1]}:{source.line})" if source else ""
