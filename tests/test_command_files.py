"""Watchpoint files, .msdbgrc, source, and `msdbg check` on dumps MindSpore wrote by itself."""

import json
import re
import os
import shutil
import subprocess
import sys

import pytest

from conftest import DEMOS, ROOT, SCRIPTS, plain_mindspore_dump, run_msdbg


def test_malformed_file_reports_every_error_with_file_line_column_before_training(tmp_path):
    bad = tmp_path / "bad.msdbg"
    bad.write_text("# comment line\n"
                   "watch tensor_overflow\n"
                   "watch tensor_too_large max_gt=abc\n"
                   "  watch nope\n"
                   "watch tensor_range range_percentage_lt=5 range_start_inclusive=0\n"
                   "watch weight_too_small max_lt=1 foo=2 on fc1*\n"
                   "frobnicate\n"
                   "watch 'unterminated\n")
    done = run_msdbg("run", "--batch", "--nx", "-x", str(bad), str(DEMOS / "nan_log.py"))
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("msdbg: error: ")]
    assert errors == [
        f"msdbg: error: {bad}:3:24: tensor_too_large max_gt: 'abc' is not a number",
        f"msdbg: error: {bad}:4:9: unknown condition 'nope'; accepted: " + ", ".join(sorted(_conditions())),
        f"msdbg: error: {bad}:5:7: tensor_range: range_percentage_lt/_gt need both range_start_inclusive and "
        "range_end_inclusive",
        f"msdbg: error: {bad}:6:33: weight_too_small has no parameter 'foo'; accepted: abs_mean_lt, max_lt, "
        "min_lt, mean_lt",
        f"msdbg: error: {bad}:7:1: unknown command 'frobnicate'; known: " + ", ".join(sorted(_commands())),
        f"msdbg: error: {bad}:8:7: unterminated ' quote",
    ]
    assert "step 0 loss" not in done.stdout, "no training step ran"


def _conditions():
    from msdbg.engine.conditions import CONDITIONS
    return CONDITIONS


def _commands():
    from msdbg.commands import COMMANDS
    return COMMANDS


def test_demo_watch_file_is_valid_and_finds_the_nan():
    done = run_msdbg("run", "--batch", "--nx", "-x", str(DEMOS / "nan_log.msdbg"), str(DEMOS / "nan_log.py"))
    assert done.returncode == 1, done.stderr[-2000:]
    assert "origin: Log Default/Log-op0" in done.stdout


def test_msdbgrc_from_home_then_cwd_and_nx(tmp_path, jit_nan_dump):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(), work.mkdir()
    (home / ".msdbgrc").write_text("watch tensor_overflow on Log\n")
    (work / ".msdbgrc").write_text("watch weight_overflow\n")
    env = dict(os.environ, HOME=str(home), PYTHONPATH=str(ROOT))

    def check(*extra):
        return subprocess.run([sys.executable, "-m", "msdbg", "check", str(jit_nan_dump), *extra], cwd=work,
                              env=env, capture_output=True, text=True, timeout=300)

    done = check()
    assert done.returncode == 1
    assert "Watchpoint 1: tensor_overflow on Log" in done.stderr and "Watchpoint 2: weight_overflow" in done.stderr
    assert "watchpoint 1 tensor_overflow: 1 tensor" in done.stdout and "watchpoint 2 weight_overflow" in done.stdout
    skipped = check("--nx")  # no .msdbgrc read, so no watchpoint: check refuses to pass as clean
    assert skipped.returncode == 2 and skipped.stderr.startswith("msdbg: error: no watchpoints")


def test_source_at_the_prompt_is_all_or_nothing(tmp_path):
    good, bad = tmp_path / "good.msdbg", tmp_path / "bad.msdbg"
    good.write_text("watch tensor_overflow\n")
    bad.write_text("watch weight_overflow\nwatch nope\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), GLOG_v="3")
    done = subprocess.run([sys.executable, "-m", "msdbg", "run", "--nx", str(DEMOS / "nan_log.py")],
                          input=f"source {bad}\ninfo watchpoints\nsource {good}\ninfo watchpoints\nquit\n",
                          env=env, capture_output=True, text=True, timeout=300)
    out = done.stdout
    assert f"*** {bad}:2:7: unknown condition 'nope'" in out
    first_info = out.split("(msdbg) info watchpoints")[1].split("(msdbg)")[0]
    assert "No watchpoints." in first_info, "the good line of a bad file was rolled back"
    second_info = out.split("(msdbg) info watchpoints")[2].split("(msdbg)")[0]
    assert "1: tensor_overflow" in second_info


def test_check_plain_mindspore_dump_finds_origin(tmp_path, jit_nan_dump):
    out = tmp_path / "hits.json"
    done = run_msdbg("check", str(jit_nan_dump), "--nx", "-c", "watch tensor_overflow", "--json", str(out))
    assert done.returncode == 1
    origin = [h for h in json.loads(out.read_text())["hits"] if h["first_offending"] and h["step"] == 3]
    assert [(h["op_type"], h["category"]) for h in origin] == [("Log", "activation")]
    # later steps' origins read tensors that were already NaN: the summary points back to where it began
    later = done.stdout[done.stdout.index("step 4 (rank 0, graph 0)"):].splitlines()
    group = later[1:later.index(next(line for line in later[1:] if line.startswith("step ")))]
    assert any(re.fullmatch(r"    already non-finite since step 3: NaN/Inf first appeared at step 3 in Log \S+", line)
               for line in group)
    assert "already non-finite" not in done.stdout[:done.stdout.index("step 4 (rank 0, graph 0)")]


@pytest.mark.parametrize("spec, steps, hit_steps", [("0|3", 2, {3}), ("4-5", 2, {4, 5}), ("0-2", 3, set()),
                                                    ("all", 6, {3, 4, 5})])
def test_check_steps_selects_iterations(tmp_path, jit_nan_dump, spec, steps, hit_steps):
    out = tmp_path / "hits.json"
    done = run_msdbg("check", str(jit_nan_dump), "--nx", "--steps", spec, "-c", "watch tensor_overflow",
                     "--json", str(out))
    assert f"in {steps} steps" in done.stdout
    assert {h["step"] for h in json.loads(out.read_text())["hits"]} == hit_steps
    assert done.returncode == (1 if hit_steps else 0)


@pytest.mark.parametrize("spec", ["x", "3-1", "1|", "-4"])
def test_check_bad_steps_spec(jit_nan_dump, spec):
    done = run_msdbg("check", str(jit_nan_dump), "--nx", "--steps", spec, "-c", "watch tensor_overflow")
    assert done.returncode == 2 and f"--steps {spec!r}" in done.stderr


def test_check_rank_selects_one_rank(tmp_path, jit_nan_dump):
    dump = tmp_path / "dump"
    shutil.copytree(jit_nan_dump, dump)
    healthy = plain_mindspore_dump(SCRIPTS / "slow_loop.py", tmp_path / "healthy", "3")
    shutil.copytree(healthy / "rank_0", dump / "rank_1")
    both = run_msdbg("check", str(dump), "--nx", "-c", "watch tensor_overflow")
    assert "in 6 steps" in both.stdout and both.returncode == 1, "ranks run the same steps: the most of any rank"
    rank1 = run_msdbg("check", str(dump), "--nx", "--rank", "1", "-c", "watch tensor_overflow")
    assert "in 3 steps" in rank1.stdout and rank1.returncode == 0
    missing = run_msdbg("check", str(dump), "--nx", "--rank", "5", "-c", "watch tensor_overflow")
    assert missing.returncode == 2 and "--rank 5: dump directory" in missing.stderr and "ranks 0, 1" in missing.stderr


def test_change_conditions_offline_with_and_without_pre_update_inputs(tmp_path):
    full = plain_mindspore_dump(SCRIPTS / "symptoms.py", tmp_path / "full", "frozen")
    outputs_only = plain_mindspore_dump(SCRIPTS / "symptoms.py", tmp_path / "outputs", "frozen", input_output=2)
    for dump, steps in ((full, {0, 1, 2, 3}), (outputs_only, {1, 2, 3})):
        out = tmp_path / f"{dump.name}.json"
        done = run_msdbg("check", str(dump), "--nx", "-c", "watch weight_not_changed", "--json", str(out))
        hits = json.loads(out.read_text())["hits"]
        assert {h["param"] for h in hits} == {"fc1.weight", "fc1.bias"}
        assert {h["step"] for h in hits} == steps
    assert "no previous step to compare fc1.bias, fc1.weight, fc2.bias, fc2.weight with (graph 0)" in done.stderr
