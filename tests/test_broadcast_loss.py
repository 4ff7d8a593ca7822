"""diagnose finds a loss fed by a broadcast ((N, 1) minus (N,) -> (N, N)) in real training, at the prompt."""

import re

import pytest

from conftest import SCRIPTS
from test_recorder import _drive, _output_of


@pytest.mark.slow
def test_broadcast_into_the_loss_is_diagnosed_at_the_prompt(tmp_path):
    done = _drive(tmp_path, ["step", "diagnose", "node Default/Sub-op0", "quit"], "--record", str(tmp_path / "r.sqlite"),
                  str(SCRIPTS / "tiny_loop.py"), "3", "--broadcast")
    assert done.returncode == 0, done.stderr[-2000:]
    diagnosis = re.sub(r"\s+", " ", _output_of(done.stdout, "diagnose"))  # unwrapped from 80 columns
    assert "cause [broadcast_into_loss]" in diagnosis
    assert "Sub Default/Sub-op0: (16, 1) with (16,) -> (16, 16), feeding the loss ReduceMean" in diagnosis
    assert "tiny_loop.py:40 return ((pred - y) ** 2).mean()" in diagnosis
    node = _output_of(done.stdout, "node Default/Sub-op0")
    assert "input 0: BiasAdd Default/BiasAdd-op1  (16, 1)" in node and "input 1: Parameter y  (16,)" in node
    assert "  shape: (16, 16)\n  dtype: float32\n" in node


@pytest.mark.slow
def test_matching_shapes_are_not_reported(tmp_path):
    done = _drive(tmp_path, ["step", "diagnose", "quit"], str(SCRIPTS / "tiny_loop.py"), "2")
    assert done.returncode == 0, done.stderr[-2000:]
    assert _output_of(done.stdout, "diagnose").strip() == "No hits, nothing to diagnose."
