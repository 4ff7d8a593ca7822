"""Read a kernel graph's ``.pb`` (MindSpore's ``anf_ir.proto`` ModelProto) into plain node rows.

protobuf's compiled parser reads a 100k-node graph in 0.04 s, its pure-Python one in 16-18 s. Importing
MindSpore selects the pure-Python one for the whole process (``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python``,
set in ``mindspore/run_check/_check_version.py`` for large checkpoints). So:

* offline (``msdbg check``, no MindSpore), ``anf_ir_pb2`` is loaded from MindSpore's file without importing
  MindSpore, and the compiled parser is used;
* inside a training, a graph file larger than ``CHILD_PARSE_BYTES`` is parsed by a child interpreter that does
  not import MindSpore (``python -m msdbg.store.pbreader PATH``), which returns the rows with ``marshal``; the
  training's own protobuf setting is left alone. Smaller graphs, or a child that fails, are parsed in process.

A row is ``(name, full_name, op_type, scope, inputs, shape, dtype)``; parameters come first, with op_type
"Parameter"; dtype is the output's element type in NumPy's words ("int32", "float16"), "" when not a tensor.
"""

from __future__ import annotations

import importlib.util
import marshal
import os
import subprocess
import sys

from msdbg.errors import MsdbgError

Row = tuple[str, str, str, str, list[str], tuple[int, ...], str]
# Below this size the in-process parse is quick even in pure Python (about 40 ms per MB, measured).
CHILD_PARSE_BYTES = 1 << 20
_ANF_IR_MODULE = "msdbg_anf_ir_pb2"
_GRAPH_ERROR_EXIT = 3


class GraphError(MsdbgError):
    """A graph file that cannot be used (missing, corrupt). ``unreadable``: it exists but cannot be read (a bad
    input, reported as an error); a missing one only means nodes are named from file names."""

    def __init__(self, message: str, *, unreadable: bool = False):
        super().__init__(message)
        self.unreadable = unreadable


def read_rows(path: str) -> list[Row]:
    """The node rows of a ``.pb`` graph file; GraphError with a one-line message naming the file."""
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        raise GraphError(f"graph file {path}: does not exist") from None
    except OSError as exc:
        raise GraphError(f"graph file {path}: {exc.strerror}", unreadable=True) from None
    if not os.path.isfile(path):
        raise GraphError(f"graph file {path}: not a regular file", unreadable=True)
    if size > CHILD_PARSE_BYTES and _pure_python_protobuf():
        rows = _rows_from_child(path)
        if rows is not None:
            return rows
    return _parse(path)


def _pure_python_protobuf() -> bool:
    try:
        from google.protobuf.internal import api_implementation
    except ImportError:
        return False
    return api_implementation.Type() == "python"


def _rows_from_child(path: str) -> list[Row] | None:
    """Parse in a fresh interpreter with protobuf's default (compiled) parser; None when that did not work."""
    env = {k: v for k, v in os.environ.items() if k != "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"}
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    try:
        done = subprocess.run([sys.executable, "-m", "msdbg.store.pbreader", path], env=env, capture_output=True,
                              timeout=600, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode == _GRAPH_ERROR_EXIT:
        raise GraphError(done.stderr.decode(errors="replace").strip())
    if done.returncode != 0:
        return None
    try:
        return marshal.loads(done.stdout)
    except (EOFError, ValueError, TypeError):
        return None


def _parse(path: str) -> list[Row]:
    model = anf_ir_pb2().ModelProto()
    try:
        with open(path, "rb") as handle:
            model.ParseFromString(handle.read())
    except FileNotFoundError:
        raise GraphError(f"graph file {path}: does not exist") from None
    except Exception as exc:  # protobuf raises its own DecodeError
        raise GraphError(f"graph file {path}: cannot be parsed ({type(exc).__name__})") from None
    if not model.graph.node and not model.graph.parameters:
        raise GraphError(f"graph file {path}: holds no graph")
    dtype_names = anf_ir_pb2().DataType
    rows: list[Row] = [(p.name, p.name, "Parameter", "", [], _shape_of(p.type), _dtype_of(p.type, dtype_names))
                       for p in model.graph.parameters]
    rows.extend((n.name, n.full_name or n.name, n.op_type, n.scope, [i.name for i in n.input],
                 _shape_of(n.output_type), _dtype_of(n.output_type, dtype_names)) for n in model.graph.node)
    return rows


def _shape_of(type_proto) -> tuple[int, ...]:
    try:
        return tuple(int(d.size) for d in type_proto.tensor_type.shape.dim)
    except AttributeError:
        return ()


def _dtype_of(type_proto, dtype_names) -> str:
    """``DT_INT32`` -> "int32"; "" for a tuple, a scalar, an undefined or an unknown type."""
    try:
        name = dtype_names.Name(type_proto.tensor_type.elem_type)
    except (AttributeError, ValueError):  # no tensor type; a number this anf_ir.proto does not name
        return ""
    return name[3:].lower() if name.startswith("DT_") and name != "DT_UNDEFINED" else ""


def anf_ir_pb2():
    """MindSpore's generated ``anf_ir_pb2`` module: MindSpore's own when it is imported, else loaded from its file
    without importing MindSpore (~1.7 s saved, and protobuf keeps its compiled parser)."""
    if "mindspore" in sys.modules:
        from mindspore.train import anf_ir_pb2 as module

        return module
    if _ANF_IR_MODULE not in sys.modules:
        package = importlib.util.find_spec("mindspore")
        if package is None or package.origin is None:
            raise GraphError("reading graph files needs MindSpore installed (mindspore.train.anf_ir_pb2)")
        location = os.path.join(os.path.dirname(package.origin), "train", "anf_ir_pb2.py")
        spec = importlib.util.spec_from_file_location(_ANF_IR_MODULE, location)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[_ANF_IR_MODULE] = module
    return sys.modules[_ANF_IR_MODULE]


def _child_main(path: str) -> int:
    try:
        rows = _parse(path)
    except GraphError as exc:
        print(exc, file=sys.stderr)
        return _GRAPH_ERROR_EXIT
    sys.stdout.buffer.write(marshal.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1]))
