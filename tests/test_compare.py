"""msdbg compare on real pairs of CPU runs: one planted change each, found at the node where the runs part ways."""

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import ROOT, SCRIPTS, plain_mindspore_dump, run_msdbg

SCRIPT = SCRIPTS / "compare_net.py"
VARIANTS = {
    "base": [],
    "base_again": [],
    "sigmoid": ["--act2", "sigmoid"],
    "no_eps": ["--eps", "0"],
    "o2": ["--amp", "O2"],
    "base_bn": ["--bn"],
    "seed_bn": ["--bn", "--seed-fc2", "7"],
    "renumbered": ["--extra-tanh"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """One MindSpore dump (input_output 0: op inputs too) per variant of the script, two runs at a time."""
    root = tmp_path_factory.mktemp("compare")
    with ThreadPoolExecutor(2) as pool:
        futures = {name: pool.submit(plain_mindspore_dump, SCRIPT, root / name, *args)
                   for name, args in VARIANTS.items()}
        return {name: future.result() for name, future in futures.items()}


def _compare(runs, a, b, tmp_path, *extra):
    out = tmp_path / f"{a}_{b}.json"
    done = run_msdbg("compare", str(runs[a]), str(runs[b]), "--json", str(out), *extra)
    return done, json.loads(out.read_text()) if out.exists() else None


def _step(report, step):
    return [d for d in report["first_divergence"] if d["step"] == step]


@pytest.mark.slow
def test_identical_runs_do_not_diverge(runs, tmp_path):
    done, report = _compare(runs, "base", "base_again", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no divergence" in done.stdout
    assert report["first_divergence"] == [] and report["errors"] == []
    assert report["unpaired"] == {"a": [], "b": []}
    assert len(report["pairs"]) > 100 and all(p["within"] and p["max_abs"] == 0 for p in report["pairs"])
    assert {p["step"] for p in report["pairs"]} == {0, 1}


@pytest.mark.slow
def test_other_activation_parts_at_that_activation(runs, tmp_path):
    done, report = _compare(runs, "base", "sigmoid", tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    [first] = _step(report, 0)
    assert first["node_a"].endswith("act2-ReLU/ReLU-op0") and first["node_b"].endswith("act2-Sigmoid/Sigmoid-op0")
    assert (first["op_type"], first["op_type_b"], first["cause"]) == ("ReLU", "Sigmoid", "op")
    assert "compare_net.py:" in first["source_a"] and "self.act2(self.bn2(self.fc2(h)))" in first["source_a"]
    assert first["inputs"][0]["max_abs"] == 0 and first["max_abs"] > 0.1 and first["cosine"] < 0.99
    # step 1 starts from weights that step 0 updated differently: the first forward op reads one
    [second] = _step(report, 1)
    assert second["node_a"].endswith("fc1-Dense/MatMul-op0") and second["cause"] == "input 1"
    assert "first divergence at step 0" in done.stdout and "cause: op" in done.stdout


@pytest.mark.slow
def test_removed_epsilon_parts_at_the_normalisation(runs, tmp_path):
    done, report = _compare(runs, "base", "no_eps", tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    [first] = _step(report, 0)
    assert first["op_type"] == "Sqrt" and first["cause"] == "input 0"
    assert "sqrt(var + self.eps)" in first["source_a"] and "sqrt(var)" in first["source_b"]
    assert "only in A" in first["inputs"][0]["note"]  # the epsilon's Add
    assert [u["op_type"] for u in report["unpaired"]["a"]] == ["Add"] and report["unpaired"]["b"] == []


@pytest.mark.slow
def test_mixed_precision_parts_at_the_first_fp16_op(runs, tmp_path):
    done, report = _compare(runs, "base", "o2", tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    [first] = _step(report, 0)
    assert first["node_a"].endswith("fc1-Dense/MatMul-op0") and "_OutputTo32" in first["node_b"]
    assert first["cause"] == "input 0"
    cast_notes = [i["note"] for i in first["inputs"] if i["note"]]
    assert cast_notes and all("Cast" in note and "only in B" in note for note in cast_notes)
    unpaired_b = {u["op_type"] for u in report["unpaired"]["b"]}
    assert "Cast" in unpaired_b
    renamed = [p for p in report["pairs"] if "_OutputTo32" in p["node_b"] and "_OutputTo32" not in p["node_a"]]
    assert len(renamed) > 30  # O2 wraps the network in a Cell of its own: every scope is renamed


@pytest.mark.slow
def test_other_init_seed_parts_at_that_layer(runs, tmp_path):
    done, report = _compare(runs, "base_bn", "seed_bn", tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    # one first divergence: BatchNorm's moving statistics (written in place, by no optimizer) also differ, but
    # they are not taken for nodes without ancestors
    [first] = _step(report, 0)
    assert first["node_a"].endswith("fc2-Dense/MatMul-op0") and first["cause"] == "input 1"
    weight = first["inputs"][1]
    assert weight["node_a"] == "fc2.weight" and not weight["within"]
    assert first["inputs"][0]["within"]
    moving = [p for p in report["pairs"] if p["step"] == 0 and p["node_a"].startswith("bn2.moving")]
    assert len(moving) == 2 and not any(p["within"] for p in moving)


@pytest.mark.slow
def test_other_kernel_numbering_still_pairs(runs, tmp_path):
    done, report = _compare(runs, "base", "renumbered", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert report["first_divergence"] == []
    renumbered = [(p["node_a"], p["node_b"]) for p in report["pairs"] if p["node_a"] != p["node_b"]]
    assert ("Expand/_Muls/Mul-op0", "Expand/_Muls/Mul-op1") in renumbered
    extra = {(u["op_type"], u["node"]) for u in report["unpaired"]["b"]}
    assert ("Mul", "Expand/_Muls/Mul-op0") in extra and any(op == "Tanh" for op, _ in extra)
    assert report["unpaired"]["a"] == []


@pytest.mark.slow
def test_steps_rank_and_cosine_options(runs, tmp_path):
    done, report = _compare(runs, "base", "sigmoid", tmp_path, "--steps", "1", "--cosine-lt", "0.9")
    assert done.returncode == 1
    assert {p["step"] for p in report["pairs"]} == {1}
    assert all(p["within"] == (p["cosine"] >= 0.9) for p in report["pairs"] if p["cosine"] is not None)
    done, report = _compare(runs, "base", "base_again", tmp_path, "--rank", "0", "--rtol", "0", "--atol", "0")
    assert done.returncode == 0 and report["first_divergence"] == []


@pytest.mark.slow
def test_bad_inputs_exit_2_with_one_line(runs, tmp_path):
    cases = [
        (["compare", str(tmp_path / "missing"), str(runs["base"])], "does not exist"),
        (["compare", str(runs["base"]), str(runs["sigmoid"]), "--rank", "3"], "--rank 3"),
        (["compare", str(runs["base"]), str(runs["sigmoid"]), "--cosine-lt", "0.9", "--rtol", "1"], "--cosine-lt"),
        (["compare", str(runs["base"]), str(runs["sigmoid"]), "--steps", "7"], "--steps 7"),
        (["compare", str(runs["base"]), str(runs["sigmoid"]), "--atol", "-1"], "--atol"),
    ]
    for args, named in cases:
        done = run_msdbg(*args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and named in lines[0], (args, done.stderr)


@pytest.mark.slow
def test_truncated_tensor_file_is_named_and_the_rest_compared(runs, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(runs["base_again"], copy)
    victim = sorted((copy / "rank_0" / "Net" / "0" / "0").glob("Tanh.*output.0*.npy"))[0]
    victim.chmod(0o600)
    victim.write_bytes(victim.read_bytes()[:-8])
    out = tmp_path / "r.json"
    done = run_msdbg("compare", str(runs["base"]), str(copy), "--json", str(out))
    assert done.returncode == 2, done.stdout + done.stderr
    assert victim.name in done.stderr and "truncated" in done.stderr
    report = json.loads(out.read_text())
    assert len(report["errors"]) == 1 and len(report["pairs"]) > 100
    assert [p for p in report["pairs"] if p["within"] is None][0]["op_type"] == "Tanh"


@pytest.mark.slow
def test_prompt_compare_and_diff_against_another_run(runs, tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text("\n".join([
        "compare " + str(runs["sigmoid"]),  # before any step: refused, training goes on
        "diff act2-ReLU/ReLU-op0",
        "step",
        "compare " + str(runs["sigmoid"]),
        "diff act2-ReLU/ReLU-op0",
        "diff fc2-Dense/BiasAdd-op0[0, :3]",
        "compare " + str(tmp_path / "missing"),
        "compare " + str(runs["sigmoid"]) + " --cosine-lt 0.9 --rtol 1",
        "continue",
    ]) + "\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), GLOG_v="3")
    done = subprocess.run([sys.executable, str(SCRIPTS / "drive_prompt.py"), str(keys), str(SCRIPT)], env=env,
                          capture_output=True, text=True, timeout=300)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr[-3000:]
    blocks = out.split("(msdbg) ")
    assert "no step has run yet" in blocks[1] and "'compare RUN' first" in blocks[2]
    compared = blocks[4]
    assert "first divergence at step 0" in compared and "act2-ReLU/ReLU-op0" in compared
    assert "B: Sigmoid" in compared and "cause: op" in compared
    assert "Sigmoid-op0" in blocks[5] and "differing elements: 128 of 128" in blocks[5] and "DIFFERS" in blocks[5]
    assert "shape=(3,)" in blocks[6] and "equal" in blocks[6]  # the layer before the change agrees
    assert "does not exist" in blocks[7] and "--cosine-lt replaces" in blocks[8]
    assert "step 1 loss" in out, "the training ran to its end"


@pytest.mark.slow
def test_without_graph_files_tensors_pair_by_file_name(runs, tmp_path):
    copies = {}
    for name in ("base", "sigmoid"):
        copies[name] = tmp_path / name
        shutil.copytree(runs[name], copies[name], ignore=shutil.ignore_patterns("graphs", "execution_order"))
    out = tmp_path / "r.json"
    done = run_msdbg("compare", str(copies["base"]), str(copies["sigmoid"]), "--json", str(out))
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(out.read_text())
    # ReLU and Sigmoid cannot pair by name: the first paired op after them is where the runs part, and its input
    # 0 (their output) is named as the cause
    [first] = _step(report, 0)
    assert first["node_a"].endswith("fc3-Dense_MatMul-op0") and first["cause"] == "input 0"
    assert {u["op_type"] for u in report["unpaired"]["a"]} == {"ReLU", "ReluGrad"}
    assert {u["op_type"] for u in report["unpaired"]["b"]} == {"Sigmoid", "SigmoidGrad"}
    assert "graph" in " ".join(report["notes"])
