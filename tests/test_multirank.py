"""Multi-rank: real 2-rank data-parallel CPU trainings launched with MindSpore's own launcher (msrun), dumped
by MindSpore into one tree (rank_0, rank_1), or each rank run under `msdbg run --batch` as msrun's command."""

import json
import os
import shutil
import subprocess

import pytest

from conftest import ROOT, SCRIPTS, run_msdbg

pytestmark = pytest.mark.skipif(shutil.which("msrun") is None, reason="MindSpore's msrun launcher is not installed")
PORTS = iter(range(18231, 18299))


def _msrun(tmp_path, *command, env=None):
    logs = tmp_path / f"logs{next(PORTS)}"
    done = subprocess.run(["msrun", "--worker_num=2", "--local_worker_num=2", f"--master_port={next(PORTS)}",
                           f"--log_dir={logs}", "--join=True", *command],
                          env=dict(os.environ, PYTHONPATH=str(ROOT), GLOG_v="3", **(env or {})),
                          capture_output=True, text=True, timeout=240)
    worker_logs = "".join(p.read_text(errors="replace")[-1500:] for p in sorted(logs.glob("worker_*.log")))
    assert done.returncode == 0, worker_logs
    return worker_logs


def _plain_dump(tmp_path, seeds):
    root = tmp_path / f"dump_{seeds}"
    config = tmp_path / f"{seeds}.json"
    config.write_text(json.dumps({
        "common_dump_settings": {"dump_mode": 0, "path": str(root), "net_name": "Net", "iteration": "all",
                                 "saved_data": "tensor", "input_output": 0, "kernels": [],
                                 "support_device": [0, 1, 2, 3, 4, 5, 6, 7]},
        "e2e_dump_settings": {"enable": True, "trans_flag": True}}))
    _msrun(tmp_path, str(SCRIPTS / "dist_train.py"), seeds, env={"MINDSPORE_DUMP_CONFIG": str(config)})
    return root


def test_different_initial_weights_are_found_and_named(tmp_path):
    dump = _plain_dump(tmp_path, "different")
    out = tmp_path / "hits.json"
    done = run_msdbg("check", str(dump), "--nx", "-c", "watch rank_weight_mismatch", "-c",
                     "watch rank_gradient_mismatch", "--json", str(out))
    assert done.returncode == 1, done.stderr
    document = json.loads(out.read_text())
    step0 = [h for h in document["hits"] if h["step"] == 0]
    assert {h["param"] for h in step0} == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert {(h["rank"], h["condition"], h["category"]) for h in step0} == {(1, "rank_weight_mismatch", "weight")}
    assert all("before this step's update differs from rank 0" in h["reasons"][0] for h in step0)
    assert all(h["stats"]["max_abs_diff"] > 0 for h in step0)
    assert not [h for h in document["hits"] if h["condition"] == "rank_gradient_mismatch"], \
        "AllReduce gives every rank the same gradients"
    assert [d["rule"] for d in document["diagnosis"]] == ["rank_weight_mismatch"]
    ranks = run_msdbg("check", str(dump), "--nx", "--rank", "1", "-c", "watch rank_weight_mismatch")
    assert ranks.returncode == 2 and "one rank only; nothing to compare" in ranks.stderr  # nothing checked
    views = run_msdbg("check", str(dump), "--nx", "-c", "info ranks", "-c", "rank 1")
    assert "rank 0: steps 0..2 on disk, 0 hits" in views.stderr and "rank 1: steps 0..2 on disk" in views.stderr
    assert "Rank 1: step 2 (graph 0)" in views.stderr
    bad = run_msdbg("check", str(dump), "--nx", "-c", "rank 7")
    assert bad.returncode == 2 and "-c: no rank 7; ranks: 0, 1" in bad.stderr


def test_consistent_ranks_are_clean(tmp_path):
    dump = _plain_dump(tmp_path, "same")
    done = run_msdbg("check", str(dump), "--nx", "-c", "watch rank_weight_mismatch", "-c",
                     "watch rank_gradient_mismatch")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "msdbg: 0 hits in 3 steps" in done.stdout, "3 steps of each of 2 ranks: the user counts 3"


def test_msdbg_run_as_the_launchers_per_rank_command(tmp_path):
    dump, out = tmp_path / "shared", tmp_path / "hits.{rank}.json"
    _msrun(tmp_path, str(ROOT / "msdbg" / "__main__.py"), "run", "--batch", "--nx", "--keep-steps", "5",
           "--dump-dir", str(dump), "--json", str(out), "-c", "watch tensor_overflow",
           str(SCRIPTS / "dist_train.py"), "different")
    for rank in (0, 1):
        document = json.loads((tmp_path / f"hits.{rank}.json").read_text())
        assert document["hits"] == [] and document["errors"] == []
    scheduler_log = next(tmp_path.glob("logs*/scheduler.log")).read_text(errors="replace")
    assert "Watchpoint 1" not in scheduler_log  # msrun's scheduler ran the script without capture
    assert sorted(p.name for p in dump.iterdir() if p.name.startswith("rank_")) == ["rank_0", "rank_1"]
    done = run_msdbg("check", str(dump), "--nx", "-c", "watch rank_weight_mismatch")
    assert done.returncode == 1 and "rank_weight_mismatch: 4 tensors" in done.stdout
