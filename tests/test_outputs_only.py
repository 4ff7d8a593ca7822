"""Batch mode on a dump msdbg owns asks MindSpore for op outputs only; initial values come from saved parameters."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from conftest import ROOT, SCRIPTS, run_msdbg

WATCH = ("-c", "watch weight_initialization", "-c", "watch weight_not_changed on 2.*")


def _sides(stdout: str) -> tuple[int, int]:
    inputs, outputs = re.search(r"^sides inputs=(\d+) outputs=(\d+)$", stdout, re.M).groups()
    return int(inputs), int(outputs)


def _hits(path) -> list[tuple[str, str, int]]:
    return sorted((h["condition"], h["param"], h["step"]) for h in json.loads(path.read_text())["hits"])


def test_outputs_only_dump_keeps_initial_and_change_conditions(tmp_path):
    """Same hits from an outputs-only dump (saved initial values, then the engine's copies) as from a full one."""
    own, given = tmp_path / "own.json", tmp_path / "given.json"
    done = run_msdbg("run", "--batch", "--nx", "--json", str(own), *WATCH, str(SCRIPTS / "dump_sides.py"))
    assert done.returncode == 1, done.stderr[-3000:]
    inputs, outputs = _sides(done.stdout)
    assert inputs == 0 and outputs > 0
    full = run_msdbg("run", "--batch", "--nx", "--json", str(given), "--dump-dir", str(tmp_path / "dump"), *WATCH,
                     str(SCRIPTS / "dump_sides.py"))
    assert full.returncode == 1, full.stderr[-3000:]
    assert _sides(full.stdout)[0] > 0  # a --dump-dir the user keeps has both sides
    hits = _hits(own)
    assert hits == _hits(given)
    assert ("weight_initialization", "0.weight", 0) in hits  # judged on the value before the first update
    # layer 2 is not given to the optimizer: unchanged at step 0 (against the saved initial value) and later
    # (against the engine's copy of the previous step)
    frozen = [h for h in hits if h[0] == "weight_not_changed"]
    assert frozen == [("weight_not_changed", p, s) for p in ("2.bias", "2.weight") for s in (0, 1, 2)]
    assert "no previous step" not in done.stderr


def test_snapshot_parameters_saves_unique_trainable_names(tmp_path):
    code = f"""
import sys, numpy as np, mindspore as ms
from mindspore import nn
sys.path.insert(0, {str(ROOT)!r})
from msdbg.capture.initial import snapshot_parameters
net = nn.Dense(3, 2, weight_init="ones")
twin_a, twin_b = ms.Parameter(np.zeros(2, np.float32), name="twin"), ms.Parameter(np.ones(2, np.float32), name="twin")
frozen = ms.Parameter(np.zeros(2, np.float32), name="frozen", requires_grad=False)
paths = snapshot_parameters({str(tmp_path / 'snap')!r})
print(sorted(paths), np.load(paths["weight"]).tolist())
print(snapshot_parameters({str(tmp_path / 'none')!r}, limit=8))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "['bias', 'weight'] [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]"
    assert lines[1] == "None" and not (tmp_path / "none").exists()


def test_failed_snapshot_falls_back_to_both_sides_and_training_goes_on(tmp_path):
    out = tmp_path / "hits.json"
    done = run_msdbg("run", "--batch", "--nx", "--json", str(out), *WATCH, str(SCRIPTS / "snapshot_fails.py"))
    assert done.returncode == 1, done.stderr[-3000:]
    assert "could not save the initial parameter values; dumping op inputs too" in done.stderr
    assert "RuntimeError: planted failure" in done.stderr
    assert _sides(done.stdout)[0] > 0  # the script ran to its end, with op inputs dumped
    assert ("weight_initialization", "0.weight", 0) in _hits(out)  # judged on the dumped pre-update input
