"""Per-step name indexes (resolve, completion, list) answer what a scan of the step's tensors answers."""

import os
import re
from collections import defaultdict

import numpy as np
import pytest

from msdbg.commands import execute
from msdbg.commands.tensor_names import StepNames, aliases
from msdbg.engine.watchpoints import TargetPattern
from msdbg.errors import UsageError
from msdbg.repl.completion import TENSOR_COMPLETIONS_SHOWN, CommandCompleter
from msdbg.session import Session
from msdbg.store.dumpdir import DumpDir, StepKey, TensorEntry
from msdbg.store.filenames import TensorFileName

PATTERNS = ["*", "Log", "Log-op0", "fc1*", "*Grad*", "fc?.weight", "*weight", "MatMul", "Default/*", "Adam",
            "Grad_MatMul", "Gradients/Default", "*[0-9]", "[!D]*", "*op[1-3]", "re:weight$", "re:^fc1",
            "re:Log|ReLU", "nothing*"]


@pytest.fixture(scope="module")
def session(jit_nan_dump):
    session = Session(dump=DumpDir(str(jit_nan_dump)))
    session.current = next(k for k in session.dump.steps() if k.iteration == 3)
    return session


def _scan_resolve(text, entries):
    """The definition: an exact name, else the one op tensor whose full name ends with '/' + the name."""
    for entry in entries:
        if text in aliases(entry):
            return entry
    node, io, slot = text, "output", 0
    parts = text.rsplit(":", 2)
    if len(parts) == 3 and parts[1] in ("input", "output") and parts[2].isdigit():
        node, io, slot = parts[0], parts[1], int(parts[2])
    matches = [e for e in entries if not e.file.is_parameter and e.io == io and e.slot == slot
               and e.node.endswith("/" + node)]
    return matches[0] if len(matches) == 1 else len(matches)


def _texts_to_resolve(entries):
    texts = {alias for entry in entries for alias in aliases(entry)}
    for entry in entries:
        parts = entry.node.split("/")
        for i in range(1, len(parts)):
            suffix = "/".join(parts[i:])
            texts.update({suffix, f"{suffix}:{entry.io}:{entry.slot}", f"{suffix}:output:1"})
    return sorted(texts | {"nothing", "Log-op9", "fc1.weigth", ":output:0", "grad:nothing", "Default"})


def test_names_and_suffixes_resolve_as_a_scan_does(session):
    entries = session.current_entries()
    names = StepNames(entries)
    assert len(_texts_to_resolve(entries)) > 300
    for text in _texts_to_resolve(entries):
        expected = _scan_resolve(text, entries)
        if isinstance(expected, int):
            with pytest.raises(UsageError, match="ambiguous" if expected > 1 else "no tensor"):
                names.resolve(text)
        else:
            assert names.resolve(text) is expected, text


def test_unknown_name_suggests_close_names(session):
    with pytest.raises(UsageError, match=r"no tensor 'fc1.weigth' at this step; did you mean: fc1.weight"):
        session.current_derived(StepNames).resolve("fc1.weigth")


def _synthetic_entries(count):
    """Op outputs ``Default/net/block{i}/MatMul-op{i}`` and parameters ``layers.{i}.weight`` (no graph needed)."""
    key = StepKey(0, "Net", 0, 0)
    entries = []
    for i in range(count):
        for op_type, node in (("MatMul", f"Default/net/block{i}/MatMul-op{i}"), ("Parameter", f"layers.{i}.weight")):
            file = TensorFileName(op_type, node, 0, 0, i, "output", 0, "DefaultFormat", "Float32")
            param = node if op_type == "Parameter" else None
            entries.append(TensorEntry(key, f"/dump/{i}.npy", file, node, op_type, "weight", param, i, None))
    return entries


@pytest.mark.parametrize("typo, meant", [("layers.1234.weigth", "layers.1234.weight"),
                                         ("Default/net/block1234/MatMul-op1243", "Default/net/block1234/MatMul-op1234"),
                                         ("Default/net/blokc2000/MatMul-op2000", "Default/net/block2000/MatMul-op2000"),
                                         ("MatMul-op2999x", "Default/net/block2999/MatMul-op2999")])
def test_a_typo_in_a_large_step_gets_the_name_meant(typo, meant):
    names = StepNames(_synthetic_entries(3000))
    with pytest.raises(UsageError, match="did you mean") as error:
        names.resolve(typo)
    assert meant in str(error.value).split("did you mean: ")[1].rstrip("?").split(", ")


def _scan_completions(entries, prefix):
    """The definition: names starting with the prefix, then names whose last '/' part does."""
    names = sorted({alias for entry in entries for alias in aliases(entry)})
    starting = [n for n in names if n.startswith(prefix)]
    by_last_part = sorted((n.rsplit("/", 1)[-1], n) for n in names if "/" in n and n not in starting)
    return starting + [n for last, n in by_last_part if last.startswith(prefix)]


@pytest.mark.parametrize("prefix", ["", "fc", "fc1.w", "grad:", "Default/", "Default/network-WithLossCell/_backbone",
                                    "Log", "MatMul-op", "Adam-op1:in", "x", "zzz"])
def test_completion_offers_what_a_scan_finds(session, prefix):
    expected = _scan_completions(session.current_entries(), prefix)
    completer = CommandCompleter(session)
    assert completer.candidates(["print"], prefix) == expected[:TENSOR_COMPLETIONS_SHOWN]
    assert completer.candidates(["watch", "tensor_overflow", "on"], prefix) == expected[:TENSOR_COMPLETIONS_SHOWN]
    names = session.current_derived(StepNames)
    for limit in (1, 3, 10):
        assert names.complete(prefix, limit) == expected[:limit]


def test_completion_is_capped_and_other_words_still_complete(session):
    completer = CommandCompleter(session)
    assert len(_scan_completions(session.current_entries(), "")) > 100
    names = session.current_derived(StepNames)
    assert names.complete("", 100) == _scan_completions(session.current_entries(), "")[:100]
    assert completer.candidates([], "pri") == ["print"]
    assert completer.candidates(["watch"], "tensor_ov") == ["tensor_overflow"]
    assert completer.candidates(["watch", "weight_too_large"], "ma") == ["max_gt="]
    assert completer.candidates(["info"], "") == ["watchpoints", "hits", "step", "ranks"]
    assert CommandCompleter(Session()).candidates(["print"], "") == [], "no step yet: nothing to offer"


def _scan_list(entries, categories, pattern):
    """``list`` as a scan over the step's op outputs and parameters: each scope with its tensors' rows (name, op,
    category with parameter, shape, dtype)."""
    groups = defaultdict(list)
    for entry in entries:
        if entry.io != "output" or (categories and entry.category not in categories):
            continue
        if pattern is None or TargetPattern.parse(pattern).matches(entry):
            groups[entry.node.rsplit("/", 1)[0] if "/" in entry.node else "(parameters)"].append(entry)
    listed = []
    for scope in sorted(groups):
        for entry in groups[scope]:
            shape = entry.graph_node.shape if entry.graph_node is not None and entry.slot == 0 else None
            name = entry.param if entry.file.is_parameter else entry.node.rsplit("/", 1)[-1]
            slot = f":{entry.slot}" if entry.slot else ""
            category = entry.category + (f" {entry.param}" if entry.param and not entry.file.is_parameter else "")
            shape_text = "?" if shape is None else "(" + ",".join(map(str, shape)) + ")"
            listed.append((scope, f"{name}{slot}", entry.op_type, category, shape_text, entry.dtype))
    return listed


def _parsed_list(text):
    """(scope, name, op, category, shape, dtype) of each row ``list`` printed (wide columns: nothing shortened)."""
    if text == "No tensors match.":
        return []
    lines = text.splitlines()
    header = lines[0]
    starts = [header.index(h) for h in ("name", "op", "category", "shape", "dtype", "size")]
    rows, scope = [], None
    for line in lines[1:]:
        if not line.startswith("  "):
            scope = line
            continue
        cells = [line[a:b].strip() for a, b in zip(starts, starts[1:])]
        rows.append((scope, *cells))
    return rows


@pytest.mark.parametrize("pattern", [None, *PATTERNS])
def test_list_shows_what_a_scan_matches(session, pattern, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")
    entries = session.current_entries()
    command = "list" if pattern is None else f"list {pattern}"
    assert _parsed_list(execute(session, command)) == _scan_list(entries, set(), pattern)
    assert _parsed_list(execute(session, command + " --weights --gradients")) == \
        _scan_list(entries, {"weight", "gradient"}, pattern)


def test_list_finds_tensors_through_every_kind_of_name(session):
    listed = {pattern: execute(session, f"list {pattern}")
              for pattern in ("Log", "fc1.weight", "Grad_MatMul", "Gradients/Default")}
    assert re.search(r"Log-op0 +Log ", listed["Log"]), "op type"
    assert re.search(r"  fc1.weight +Parameter", listed["fc1.weight"]), "parameter name"
    assert re.search(r"MatMul-op2 +MatMul", listed["Grad_MatMul"]) and "ReluGrad" not in listed["Grad_MatMul"], \
        "scope part"
    assert "ReluGrad-op0" in listed["Gradients/Default"] and "Log" not in listed["Gradients/Default"], "scope"


def test_node_suffixes_are_found_as_a_scan_finds_them(session):
    graph = session.dump.graph(0, 0)
    suffixes = {"/".join(n.full_name.split("/")[i:]) for n in graph.nodes.values()
                for i in range(1, n.full_name.count("/") + 1)}
    assert len(suffixes) > 20
    for suffix in sorted(suffixes | {"nothing", "", "Default/nothing"}):
        expected = [n for n in graph.nodes.values() if n.full_name.endswith("/" + suffix)]
        assert graph.nodes_with_suffix(suffix) == expected, suffix


def _fake_step(root, names):
    folder = root / "rank_0" / "Net" / "0" / "0"
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        np.save(folder / f"{name}.0.0.1700000000000000.output.0.DefaultFormat.Float32.npy", np.zeros(2, np.float32))
    return folder


def test_indexes_are_built_once_per_listing_and_again_when_the_step_folder_changes(tmp_path):
    folder = _fake_step(tmp_path, ["Log.Default_Log-op0"])
    dump = DumpDir(str(tmp_path))
    key = dump.steps()[0]
    built = dump.derived(key, StepNames)
    assert dump.derived(key, StepNames) is built
    assert dump.tensors(key) is dump.tensors(key)
    _fake_step(tmp_path, ["ReLU.Default_ReLU-op0"])
    os.utime(folder, ns=(1, 1))  # a new mtime whatever the file system's timestamp granularity
    rebuilt = dump.derived(key, StepNames)
    assert rebuilt is not built
    assert rebuilt.resolve("Default_ReLU-op0").op_type == "ReLU"  # no graph: nodes keep their file-name form
    with pytest.raises(UsageError, match="no tensor 'Default_ReLU-op0'"):
        built.resolve("Default_ReLU-op0")


def test_completion_adds_the_space_after_a_finished_word(session):
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document

    completer = CommandCompleter(session)

    def complete(text):
        return [(c.text, c.display_meta_text) for c in completer.get_completions(Document(text), CompleteEvent())]

    assert complete("pri") == [("print ", "")]
    overflow, = complete("watch tensor_ov")
    assert overflow == ("tensor_overflow ", "NaN or +/-Inf in any tensor"), "a condition shows its description"
    assert complete("watch weight_too_large ma") == [("max_gt=", "")], "a parameter waits for its value"
    assert ("fc1.weight", "") in complete("print fc1.w"), "a tensor name may take a [slice]"
    assert complete("info h") == [("hits ", "")] and ("conditions ", "") in complete("help con")
