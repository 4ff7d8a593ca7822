"""Start-up and interactive latency: ``msdbg --help``, and list / completion / trace / graph walks on a 100k-node graph.

    python benchmarks/latency.py [--nodes 100000] [--repeat 5] [--quick] [--trace-limit 10]

Part 1, start-up: wall time of ``python -m msdbg --help`` (best and median of --repeat x 2 runs) against
``python -c pass`` in the same run; target <= 0.3 s. Checks that MindSpore is not imported, two ways: the
modules in sys.modules after ``msdbg.cli.main(['--help'])`` in a fresh interpreter, and ``python -X importtime``
(whose slowest imports are listed).

Part 2, a synthetic dump of a --nodes CNode graph (default 100,000) written under /tmp (removed at the end):
``rank_0/graphs/ms_output_trace_code_graph_0.pb`` built with ``mindspore.train.anf_ir_pb2`` (a residual MLP of
B blocks, 13 CNodes each: Load x2, MatMul, BiasAdd, ReLU, Add forward; ReluGrad, BiasAddGrad, MatMul x2, Add
backward; ApplyMomentum x2; 4 parameters per block; scopes and full names as MindSpore writes them), the
``.ir`` beside it (full name and two ``# In file`` source lines per node), ``execution_order/`` and one
iteration folder holding one small .npy per kernel output and parameter (about 115k files, hard links of one
file). Then, in this
process, with msdbg's own objects (Session, DumpDir, the command registry, CommandCompleter):
  - graph loading (once per graph; reported separately): MindSpore's protobuf import, read_graph and its parts;
  - per interactive operation, median (and best) of --repeat runs, target <= 50 ms each:
    Session.current_entries(), ``list``, ``list PATTERN``, completion after ``print `` and after a prefix,
    ``node``, ``inputs -r 3``, Graph.ancestors of the deepest node (cache cleared), ``trace`` with a few hits;
  - ``trace`` when a NaN spreads (every tensor downstream of a forward op hits, as with a NaN loss: about 70% of
    the graph), on graphs of growing size, each stopped after --trace-limit seconds; the evaluation's
    mark_origins on the same hits where it ends within the limit.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, child_env, load_note, median, msdbg_argv, verdict  # noqa: E402

sys.path.insert(0, str(ROOT))

STARTUP_TARGET = 0.3
OP_TARGET = 0.050
PER_BLOCK = 13
BACKBONE = "Default/network-WithLossCell/_backbone-Net/layers-SequentialCell"


# ----- part 1: start-up ---------------------------------------------------------------------------------------
def startup(repeat: int) -> None:
    print(f"== start-up: msdbg --help ==  ({load_note()})")
    cases = {"python -c pass": [sys.executable, "-c", "pass"], "msdbg --help": msdbg_argv("--help")}
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeat * 2):
        for name, argv in cases.items():
            start = time.perf_counter()
            subprocess.run(argv, env=child_env(), cwd=ROOT, stdout=subprocess.DEVNULL, check=True)
            times[name].append(time.perf_counter() - start)
    base = min(times["python -c pass"])
    for name, spent in times.items():
        print(f"{name:16} best {min(spent) * 1e3:6.1f} ms  median {median(spent) * 1e3:6.1f} ms  "
              f"({min(spent) / base:.2f}x of python -c pass)")
    best = min(times["msdbg --help"])
    print(f"msdbg --help  python -c pass {base:.3f} s  msdbg --help {best:.3f} s  {best / base:.2f}x  "
          f"{verdict(best, STARTUP_TARGET, unit=' s')}  (median {median(times['msdbg --help']):.3f} s)")

    probe = ("import sys\nfrom msdbg.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
             "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'mindspore', 'numpy', 'prompt_toolkit', "
             "'google'})\nprint('HEAVY', ' '.join(heavy) or '-', len(sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", probe], env=child_env(), cwd=ROOT, capture_output=True, text=True,
                          check=True)
    line = next(l for l in done.stdout.splitlines() if l.startswith("HEAVY"))
    heavy, count = line.split()[1], line.split()[2]
    print(f"sys.modules after msdbg --help: {count} modules; heavy packages among them: {heavy} "
          f"-> MindSpore {'IMPORTED' if 'mindspore' in heavy else 'not imported'}")
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "msdbg", "--help"], env=child_env(), cwd=ROOT,
                          capture_output=True, text=True, check=True)
    rows = []
    for row in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", row)
        if match:
            rows.append((int(match[2]), len(match[3]), match[4]))
    top = [r for r in rows if r[1] <= 1]
    top.sort(reverse=True)
    ms_mods = [r[2] for r in rows if r[2].split(".")[0] == "mindspore"]
    print(f"-X importtime: {len(rows)} imports, {sum(r[0] for r in top) / 1e3:.1f} ms in top-level imports, "
          f"mindspore modules: {len(ms_mods)}; slowest top-level: "
          + ", ".join(f"{name} {us / 1e3:.1f} ms" for us, _, name in top[:6]))


# ----- part 2: the synthetic graph and dump ---------------------------------------------------------------------
class _Builder:
    """Nodes of the synthetic kernel graph, in execution order."""

    def __init__(self):
        self.nodes: list[tuple[str, str, str, str, list[str]]] = []  # name, op_type, scope, full_name, inputs
        self.params: list[tuple[str, bool]] = []  # name, is_ref
        self.counts: dict[str, int] = {}

    def param(self, name: str, ref: bool = True) -> str:
        self.params.append((name, ref))
        return name

    def op(self, op_type: str, scope: str, inputs: list[str]) -> str:
        number = self.counts.get(op_type, 0)
        self.counts[op_type] = number + 1
        name = str(len(self.nodes) + 1)
        self.nodes.append((name, op_type, scope, f"{scope}/{op_type}-op{number}", inputs))
        return name


def build_graph(blocks: int) -> _Builder:
    """A residual MLP: forward blocks, the loss, the backward blocks in reverse, one Momentum update per param."""
    g = _Builder()
    x, y = g.param("x", ref=False), g.param("y", ref=False)
    lr, momentum = g.param("learning_rate"), g.param("momentum")
    saved = []
    for i in range(blocks):
        scope = f"{BACKBONE}/{i}-Block"
        w, b = g.param(f"layers.{i}.weight"), g.param(f"layers.{i}.bias")
        load_w = g.op("Load", "Default", [w, "U"])
        load_b = g.op("Load", "Default", [b, "U"])
        mm = g.op("MatMul", f"{scope}/dense-Dense", [x, load_w])
        ba = g.op("BiasAdd", f"{scope}/dense-Dense", [mm, load_b])
        relu = g.op("ReLU", f"{scope}/relu-ReLU", [ba])
        out = g.op("Add", scope, [relu, x])
        saved.append((x, load_w, relu, w, b))
        x = out
    loss = g.op("SoftmaxCrossEntropyWithLogits", "Default/network-WithLossCell/_loss_fn-SoftmaxCrossEntropyWithLogits",
                [x, y])
    dx = g.op("SoftmaxCrossEntropyWithLogitsGrad", "Gradients/Default/network-WithLossCell/_loss_fn", [loss, x, y])
    updates = []
    for i in reversed(range(blocks)):
        x_in, load_w, relu, w, b = saved[i]
        scope = f"Gradients/{BACKBONE}/{i}-Block"
        rg = g.op("ReluGrad", f"{scope}/relu-ReLU/gradReLU", [dx, relu])
        bg = g.op("BiasAddGrad", f"{scope}/dense-Dense/gradBiasAdd", [rg])
        wg = g.op("MatMul", f"{scope}/dense-Dense/gradMatMul", [x_in, rg])
        ig = g.op("MatMul", f"{scope}/dense-Dense/gradMatMul", [rg, load_w])
        dx = g.op("Add", f"{scope}/gradAdd", [ig, dx])
        updates.append((w, wg))
        updates.append((b, bg))
    for param, grad in reversed(updates):
        moment = g.param(f"moments.{param}")
        g.op("ApplyMomentum", "Default/optimizer-Momentum", [param, moment, lr, grad, momentum])
    return g


def _anf_ir_pb2():
    """MindSpore's generated protobuf module, loaded from its file without importing MindSpore (whose import
    switches protobuf to its pure-Python implementation, 10-30x slower to build a 100k-node graph)."""
    import importlib.util

    package = importlib.util.find_spec("mindspore").submodule_search_locations[0]
    spec = importlib.util.spec_from_file_location("_bench_anf_ir_pb2", os.path.join(package, "train", "anf_ir_pb2.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_graph_dump(root: str, blocks: int) -> tuple[float, int]:
    """Write the synthetic dump in a child process (which never imports MindSpore); (seconds, tensor files)."""
    start = time.perf_counter()
    env = child_env()
    env.pop("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", None)  # set to 'python' by MindSpore's import in this process
    done = subprocess.run([sys.executable, __file__, "--write-dump", root, str(blocks)], env=env,
                          capture_output=True, text=True, check=True)
    return time.perf_counter() - start, int(done.stdout.split()[-1])


def write_graph_dump(root: str, g: _Builder) -> tuple[str, int]:
    """The pb, ir, execution order and one iteration folder with a 4-element float32 .npy per kernel output and
    parameter. Returns the step folder and its file count."""
    anf_ir_pb2 = _anf_ir_pb2()

    rank = os.path.join(root, "rank_0")
    os.makedirs(os.path.join(rank, "graphs"))
    os.makedirs(os.path.join(rank, "execution_order"))
    step = os.path.join(rank, "Net", "0", "0")
    os.makedirs(step)

    model = anf_ir_pb2.ModelProto()
    graph = model.graph
    graph.name = "kernel_graph0"
    tensor = anf_ir_pb2.DataType.Value("DT_TENSOR")
    float32 = anf_ir_pb2.DataType.Value("DT_FLOAT32")
    for name, _ in g.params:
        proto = graph.parameters.add()
        proto.name = name
        proto.type.data_type = tensor
        proto.type.tensor_type.elem_type = float32
        proto.type.tensor_type.shape.dim.add().size = 4
    for name, op_type, scope, full_name, inputs in g.nodes:
        proto = graph.node.add()
        proto.name, proto.op_type, proto.scope, proto.full_name = name, op_type, scope, full_name
        for inp in inputs:
            edge = proto.input.add()
            edge.name = inp
            edge.type = anf_ir_pb2.InputProto.DATA_EDGE
        proto.output_type.data_type = tensor
        proto.output_type.tensor_type.elem_type = float32
        proto.output_type.tensor_type.shape.dim.add().size = 4
    with open(os.path.join(rank, "graphs", "ms_output_trace_code_graph_0.pb"), "wb") as handle:
        handle.write(model.SerializeToString())

    with open(os.path.join(rank, "graphs", "ms_output_trace_code_graph_0.ir"), "w", encoding="utf-8") as ir:
        ir.write(f"# IR entry: @kernel_graph0\n# Total params: {len(g.params)}\n# Params:\n")
        for number, (name, ref) in enumerate(g.params, start=1):
            kind = "Ref[Tensor[Float32]]" if ref else "Tensor[Float32]"
            ir.write(f"%para{number}_{name}: <{kind}, (4)>  :  has_default\n")
        ir.write("\nsubgraph @kernel_graph0() {\n")
        for number, (name, op_type, _, full_name, _) in enumerate(g.nodes):
            ir.write(f"  %{number}(CNode_{name}) = PrimFunc_{op_type}(%x) cnode_attrs: {{checkpoint: Bool(1)}}\n"
                     f"      : (<Tensor[Float32], (4)>) -> (<Tensor[Float32], (4)>)\n"
                     f"      # Fullname with scope: ({full_name})\n"
                     f"      # In file /work/model/train.py:{40 + number % 50}, 8~30/        x = self.block(x)/\n"
                     f"      # In file /opt/lib/site-packages/mindspore/nn/layer/basic.py:{600 + number % 9}/"
                     f"        return ops.{op_type.lower()}(x)/\n")
        ir.write("}\n")

    kernels = [(name, op_type, full_name) for name, op_type, _, full_name, _ in g.nodes if op_type != "Load"]
    with open(os.path.join(rank, "execution_order", "ms_execution_order_graph_0.csv"), "w") as order:
        order.write("NodeExecutionOrder-FullNameWithScope\n")
        order.writelines(full_name + "\n" for _, _, full_name in kernels)

    import numpy as np

    # One 4-element .npy hard-linked under every name (far faster to make than 100k files); ext4 allows 65000
    # links to a file, so a new one every 60000.
    stamp = 1700000000000000
    names = [f"{op_type}.{full_name.replace('/', '_')}" for _, op_type, full_name in kernels]
    names += [f"Parameter.{name.replace('.', '_')}" for name, _ in g.params]
    for number, stem in enumerate(names):
        image = os.path.join(root, f"tensor{number // 60000}.npy")
        if number % 60000 == 0:
            np.save(image, np.zeros(4, np.float32))
        os.link(image, os.path.join(step, f"{stem}.0.0.{stamp + number}.output.0.DefaultFormat.Float32.npy"))
    return step, len(names)


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout


def timed(fn, repeat: int, setup=None) -> tuple[float, float, object, int]:
    """(median, best, last result) of repeat calls after one warm-up call; 1 call when the warm-up took over 1 s
    (20x the target: more runs would not change the verdict)."""
    if setup:
        setup()
    start = time.perf_counter()
    result = fn()
    if time.perf_counter() - start > 1.0:
        repeat = 1
    spent = []
    for _ in range(repeat):
        if setup:
            setup()
        start = time.perf_counter()
        result = fn()
        spent.append(time.perf_counter() - start)
    return median(spent), min(spent), result, len(spent)


def with_limit(fn, seconds: float) -> tuple[float | None, object]:
    """Run fn once; (seconds, result), or (None, None) when it ran past the limit and was stopped."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    start = time.perf_counter()
    try:
        result = fn()
        return time.perf_counter() - start, result
    except _Timeout:
        return None, None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def nan_hits(session, graph, entries, first_block: int):
    """tensor_overflow hits for every tensor that a NaN made in block ``first_block``'s ReLU reaches (downstream:
    the later forward ops, the loss, every gradient, every update and every updated parameter)."""
    from msdbg.engine.hits import Hit

    origin = graph.by_full_name[f"{BACKBONE}/{first_block}-Block/relu-ReLU/ReLU-op{first_block}"]
    reached, stack = set(), [origin.name]
    while stack:
        current = stack.pop()
        if current in reached:
            continue
        reached.add(current)
        stack.extend(n.name for n in graph.consumers(current))
    for param, updaters in graph.updaters.items():  # an updated parameter holds the update's NaN
        if any(u in reached for u in updaters):
            reached.add(param)
    hits = []
    for entry in entries:
        node = entry.graph_node
        if node is not None and node.name in reached and entry.io == "output":
            hits.append(Hit(1, "tensor_overflow", entry, {"nan": 4, "size": 4}, {}, ("not finite: nan=4 of 4",),
                            first_offending=node is origin))
    return hits


def graph_latency(args: argparse.Namespace, scratch: str) -> None:
    print(f"\n== {args.nodes} CNode graph: graph loading and interactive operations ==  ({load_note()})")
    start = time.perf_counter()
    from mindspore.train import anf_ir_pb2  # noqa: F401  (also what read_graph imports first)
    pb_import = time.perf_counter() - start

    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document

    from msdbg.commands import execute
    from msdbg.repl.completion import CommandCompleter
    from msdbg.session import Session
    from msdbg.store import graph as graph_module
    from msdbg.store.dumpdir import DumpDir, StepKey

    blocks = max(1, round(args.nodes / PER_BLOCK))
    root = os.path.join(scratch, f"graph{blocks}")
    written, files = make_graph_dump(root, blocks)
    rank_dir = os.path.join(root, "rank_0")
    pb = os.path.join(rank_dir, "graphs", "ms_output_trace_code_graph_0.pb")
    ir = os.path.join(rank_dir, "graphs", "ms_output_trace_code_graph_0.ir")
    order = os.path.join(rank_dir, "execution_order", "ms_execution_order_graph_0.csv")
    print(f"synthetic dump: {blocks * PER_BLOCK + 2} CNodes + {4 * blocks + 4} parameters ({blocks} blocks), "
          f"{files} tensor files in one step, .pb {os.path.getsize(pb) / 1e6:.1f} MB, "
          f".ir {os.path.getsize(ir) / 1e6:.1f} MB; written in {written:.1f} s")

    print("graph loading (once per graph, what read_graph does, one run each; not an interactive target):")
    print(f"  {'import mindspore.train.anf_ir_pb2 (imports MindSpore)':56} {pb_import:6.2f} s")
    start = time.perf_counter()
    nodes = graph_module._read_pb_nodes(pb)
    pb_time = time.perf_counter() - start
    from google.protobuf.internal import api_implementation

    print(f"  {'_read_pb_nodes: parse the .pb, make Nodes':56} {pb_time:6.2f} s  "
          f"(protobuf implementation: {api_implementation.Type()})")
    start = time.perf_counter()
    sources, kinds = graph_module._read_ir(ir)
    for node in nodes:
        node.source = sources.get(node.full_name, [])
    ir_time = time.perf_counter() - start
    print(f"  {'_read_ir: source lines, parameter kinds':56} {ir_time:6.2f} s")
    start = time.perf_counter()
    exec_order = graph_module._read_exec_order(order)
    order_time = time.perf_counter() - start
    print(f"  {'_read_exec_order':56} {order_time:6.2f} s")
    start = time.perf_counter()
    graph = graph_module.Graph(0, nodes, kinds, exec_order)
    build_time = time.perf_counter() - start
    print(f"  {'Graph(): indexes, classification':56} {build_time:6.2f} s")
    print(f"  {'read_graph (the sum)':56} {pb_time + ir_time + order_time + build_time:6.2f} s")

    session = Session(dump=DumpDir(root))
    key = StepKey(0, "Net", 0, 0)
    session.dump._graphs[(0, 0)] = graph  # the graph loaded above: what the first command would have done
    session.current = key
    entries = session.current_entries()
    completer = CommandCompleter(session)
    deep = graph.by_full_name[f"{BACKBONE}/{blocks - 1}-Block/Add-op{blocks - 1}"]
    last_param = f"layers.{blocks - 1}.weight"
    short_node = f"{blocks - 1}-Block/relu-ReLU/ReLU-op{blocks - 1}"

    def complete(text: str) -> list:
        return list(completer.get_completions(Document(text), CompleteEvent()))

    def clear_ancestors() -> None:
        graph._ancestor_cache.clear()

    # A few hits along one forward path: tensor_too_large on the residual outputs of the last 5 blocks.
    from msdbg.engine.hits import Hit

    few = [Hit(1, "tensor_too_large", e, {"size": 4}, {}, ("abs_mean > 1000",)) for e in entries
           if e.graph_node is not None and e.op_type == "Add" and e.node.startswith(BACKBONE)
           and int(e.node.split("/")[4].split("-")[0]) >= blocks - 5]
    few[0].first_offending = True

    def trace_few() -> str:
        session.hits = few
        return execute(session, "trace")

    operations = [
        ("Session.current_entries()", lambda: session.current_entries(), None),
        ("list", lambda: execute(session, "list"), None),
        (f"list '*{blocks - 1}-Block*'", lambda: execute(session, f"list *{blocks - 1}-Block*"), None),
        ("complete 'print '", lambda: complete("print "), None),
        (f"complete 'print {BACKBONE[:30]}...{blocks - 1}'",
         lambda: complete(f"print {BACKBONE}/{blocks - 1}"), None),
        ("complete 'watch tensor_ov'", lambda: complete("watch tensor_ov"), None),
        (f"node {short_node}", lambda: execute(session, f"node {short_node}"), None),
        (f"inputs {short_node} -r 3", lambda: execute(session, f"inputs {short_node} -r 3"), None),
        ("Graph.ancestors(last Add) uncached", lambda: graph.ancestors(deep.name), clear_ancestors),
        (f"Graph.ancestors({last_param}) uncached", lambda: graph.ancestors(last_param), clear_ancestors),
        (f"trace, {len(few)} hits on one path, cold", trace_few, clear_ancestors),
        (f"trace, {len(few)} hits on one path, warm", trace_few, None),
    ]
    print(f"interactive operations on {len(entries)} tensors of the current step (after one warm-up call: median "
          f"and best of {args.repeat}, or 1 run when the warm-up took over 1 s; target <= {OP_TARGET * 1e3:.0f} ms "
          "each):")
    missed = []
    for name, fn, setup in operations:
        med, best, result, runs = timed(fn, args.repeat, setup)
        size = len(result) if isinstance(result, (list, frozenset, set)) else (
            result.count("\n") + 1 if isinstance(result, str) else "")
        unit = "items" if not isinstance(result, str) else "lines"
        if med > OP_TARGET:
            missed.append(name)
        spread = f"(best {best * 1e3:8.1f})" if runs > 1 else f"{'(1 run)':>15}"
        print(f"  {name:52} {med * 1e3:8.1f} ms  {spread}  {size} {unit}  "
              f"{verdict(med * 1e3, OP_TARGET * 1e3, unit=' ms')}")
    print(f"  {len(operations) - len(missed)} of {len(operations)} operations met the target; missed: "
          + (", ".join(missed) or "none"))
    trace_scaling(args, scratch, graph)


def trace_scaling(args: argparse.Namespace, scratch: str, loaded) -> None:
    """trace (and mark_origins) when a NaN spreads, on graphs of growing size (``loaded``: the --nodes graph)."""
    from msdbg.commands import execute
    from msdbg.engine.trace import mark_origins
    from msdbg.session import Session
    from msdbg.store.dumpdir import DumpDir, StepKey

    print(f"\n'trace' when a NaN in a forward ReLU spreads downstream (each run stopped after {args.trace_limit:g} s):")
    sizes = sorted({s for s in (1000, 3000, 10000, args.nodes) if s <= args.nodes})
    previous = None
    for nodes in sizes:
        blocks = max(1, round(nodes / PER_BLOCK))
        root = os.path.join(scratch, f"graph{blocks}")
        if not os.path.isdir(root):
            make_graph_dump(root, blocks)
        session = Session(dump=DumpDir(root))
        session.current = StepKey(0, "Net", 0, 0)
        if nodes == args.nodes:
            session.dump._graphs[(0, 0)] = loaded
        graph = session.dump.graph(0, 0)
        entries = session.current_entries()
        hits = nan_hits(session, graph, entries, max(0, blocks - 10))
        session.hits = hits
        graph._ancestor_cache.clear()
        spent, output = with_limit(lambda: execute(session, "trace"), args.trace_limit)
        links = len(re.findall(r"^ +#\d+ ", output, re.M)) if output else None
        cached = len(graph._ancestor_cache)
        graph._ancestor_cache.clear()
        for hit in hits:
            hit.first_offending = False
        marked = None
        if spent is not None:  # mark_origins grows as fast: not run where trace was already stopped
            marked, _ = with_limit(lambda: mark_origins(hits, graph), args.trace_limit)
        graph._ancestor_cache.clear()
        shown = f"{spent:8.2f} s" if spent is not None else f"> {args.trace_limit:g} s (stopped)"
        growth = ""
        if spent is not None and previous is not None and previous[1] is not None:
            growth = f"  x{spent / previous[1]:.1f} for x{nodes / previous[0]:.1f} nodes"
        mark = f"{marked:.2f} s" if marked is not None else (
            f"> {args.trace_limit:g} s (stopped)" if spent is not None else "not run")
        print(f"  {len(graph.nodes) - len(graph.param_category):>6} CNodes, {len(hits):>6} hits: trace {shown}"
              f" ({links if links is not None else '?'} links; {cached} ancestor sets computed){growth}; "
              f"mark_origins {mark}  {verdict((spent or 1e9) * 1e3, OP_TARGET * 1e3, unit=' ms')}")
        previous = (nodes, spent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100000, help="CNodes of the synthetic graph (default 100000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per operation, median taken (default 5)")
    parser.add_argument("--trace-limit", type=float, default=10.0, help="seconds before a NaN trace is stopped")
    parser.add_argument("--quick", action="store_true", help="3 runs per operation, 5 s trace limit")
    parser.add_argument("--skip-startup", action="store_true", help="skip part 1 (msdbg --help)")
    parser.add_argument("--write-dump", nargs=2, metavar=("ROOT", "BLOCKS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write_dump:
        _, files = write_graph_dump(args.write_dump[0], build_graph(int(args.write_dump[1])))
        print(files)
        return
    if args.quick:
        args.repeat, args.trace_limit = 3, 5.0
    if not args.skip_startup:
        startup(args.repeat)
    scratch = tempfile.mkdtemp(prefix="msdbg-bench-latency-")
    try:
        graph_latency(args, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
