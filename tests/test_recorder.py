"""The flight recorder and the run over time: real training through the real prompt, `msdbg check` on a real
dump, and `msdbg open` on what they recorded."""

import os
import re
import sqlite3
import subprocess
import sys

import pytest

from conftest import ROOT, SCRIPTS, run_msdbg

WIDTH = 80


def _drive(tmp_path, lines, *args):
    keys = tmp_path / "keys.txt"
    keys.write_text("\n".join(lines) + "\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), GLOG_v="3", COLUMNS=str(WIDTH))
    return subprocess.run([sys.executable, str(SCRIPTS / "drive_prompt.py"), str(keys), *args],
                          env=env, capture_output=True, text=True, timeout=600)


def _output_of(out: str, command: str) -> str:
    """What the prompt printed after ``(msdbg) command``, up to the next prompt."""
    return out.split(f"(msdbg) {command}\n", 1)[1].split("(msdbg) ", 1)[0]


@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    """300 steps of a tiny network at the prompt with --keep-steps 2, recorded; commands typed at the end."""
    tmp = tmp_path_factory.mktemp("long")
    record = tmp / "run.msdbg.sqlite"
    done = _drive(tmp, [
        "watch tensor_overflow",
        "watch tensor_all_zero on fc2.bias",
        "continue",
        "plot loss",
        "history fc1.weight l2norm",
        "history fc1.weight",
        "history loss",
        "plot fc1.weight abs_mean 100-199",
        "info hits",
        "list",
        "stats fc1.weight",
        "help",
        "help conditions",
        "help tensor_range",
        "grads -s norm",
        "contnue",
        "watch tensor_overfow",
        "quit",
    ], "--keep-steps", "2", "--record", str(record), str(SCRIPTS / "tiny_loop.py"), "300")
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, record


@pytest.mark.slow
def test_plot_loss_shows_every_step_in_the_width(long_run):
    out, _ = long_run
    printed = [float(v) for v in re.findall(r"^step \d+ loss ([\d.]+)$", out, re.M)]
    assert len(printed) == 300
    chart = _output_of(out, "plot loss").splitlines()
    assert chart[0].startswith("loss (300 steps, 0..299;")
    assert all(len(line) <= WIDTH for line in chart), max(chart, key=len)
    rows = [line for line in chart if "┤" in line]
    assert len(rows) == 12
    assert float(rows[0].split("┤")[0]) == pytest.approx(max(printed), abs=1e-6), "the y axis spans the losses"
    assert float(rows[-1].split("┤")[0]) == pytest.approx(min(printed), abs=1e-6)
    plotted = rows[0].split("┤")[1]
    assert len(plotted) == WIDTH - len(rows[0].split("┤")[0]) - 1, "the chart uses the width given"
    assert "x: NaN/Inf" not in "\n".join(chart), "a healthy run marks no step"


@pytest.mark.slow
def test_history_after_pruning_returns_every_step(long_run):
    out, record = long_run
    table = _output_of(out, "history fc1.weight l2norm").splitlines()
    assert table[0] == "fc1.weight l2norm: 300 steps"
    steps = [int(line.split()[0]) for line in table[2:]]
    assert steps == list(range(300)), "every step, though only 2 step folders were kept on disk"
    assert _output_of(out, "history fc1.weight").startswith("fc1.weight: 300 steps (steps 0..299)")
    losses = [float(line.split()[1]) for line in _output_of(out, "history loss").splitlines()[2:]]
    printed = [float(v) for v in re.findall(r"^step \d+ loss ([\d.]+)$", out, re.M)]
    assert losses == pytest.approx(printed, abs=1e-6), "the recorded loss is the one the script printed"
    window = _output_of(out, "plot fc1.weight abs_mean 100-199")
    assert window.startswith("fc1.weight abs_mean (100 steps, 100..199;")
    with sqlite3.connect(record) as db:
        assert db.execute("SELECT COUNT(*) FROM steps").fetchone()[0] == 300
        assert db.execute("SELECT COUNT(DISTINCT step) FROM stats").fetchone()[0] == 300


@pytest.mark.slow
def test_80_columns_and_did_you_mean(long_run):
    out, _ = long_run
    for command in ("list", "stats fc1.weight", "info hits", "help", "help conditions", "help tensor_range",
                    "grads -s norm", "history fc1.weight"):
        text = _output_of(out, command)
        assert text.strip(), command
        assert max(map(len, text.splitlines())) <= WIDTH, (command, max(text.splitlines(), key=len))
    assert "watchpoint 2 tensor_all_zero" not in _output_of(out, "info hits")
    assert "unknown command 'contnue'; did you mean continue?" in _output_of(out, "contnue")
    assert "did you mean tensor_overflow" in _output_of(out, "watch tensor_overfow")
    conditions = _output_of(out, "help conditions")
    assert re.search(r"^tensor_overflow +NaN or \+/-Inf in any tensor$", conditions, re.M)
    assert "range_start_inclusive: setting, no default" in _output_of(out, "help tensor_range")
    grads = _output_of(out, "grads -s norm").split("\nparameter ", 1)[1].splitlines()
    names = [line.split()[0] for line in grads[1:]]
    norms = [float(line.split()[1]) for line in grads[1:]]
    assert sorted(names) == ["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"] and norms == sorted(norms)[::-1]
    assert all(line.split()[3] != "-" for line in grads[1:]), "the prompt's dump holds pre-update copies"


@pytest.mark.slow
def test_open_answers_over_a_finished_run(long_run):
    _, record = long_run
    done = run_msdbg("open", str(record), "--batch", "--nx", "-c", "history fc2.bias mean", "-c", "plot loss",
                     "-c", "info hits", "-c", "diagnose", "-c", "info watchpoints")
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "300 steps" in out.splitlines()[0]
    assert "fc2.bias mean: 300 steps" in out and "loss (300 steps, 0..299;" in out
    assert "No hits." in out and "No hits, nothing to diagnose." in out
    assert "1: tensor_overflow" in out and "2: tensor_all_zero zero_percentage_ge=100 on fc2.bias" in out


def test_check_records_and_open_finds_the_newest(jit_nan_dump, tmp_path):
    runs = tmp_path / "runs"
    env = {"MSDBG_RUNS_DIR": str(runs)}
    checked = _msdbg(env, "check", str(jit_nan_dump), "--nx", "-c", "watch tensor_overflow")
    assert checked.returncode == 1, checked.stderr[-2000:]
    recordings = list(runs.iterdir())
    assert len(recordings) == 1 and recordings[0].name.endswith("-dump.msdbg.sqlite")
    assert f"flight recording: {recordings[0]}" in checked.stdout
    opened = _msdbg(env, "open", "--batch", "--nx", "-c", "info hits -s 3 -w 1", "-c", "history loss",
                    "-c", "diagnose", "-c", "plot Log-op0 nonfinite", "-c", "plot loss")
    assert opened.returncode == 1, opened.stderr[-2000:]
    out = opened.stdout
    counts = re.search(r"^watchpoint 1 tensor_overflow: (\d+) hits \(step 3\)$", out, re.M)
    assert counts and int(counts[1]) == len(re.findall(r"^#\d+ wp 1 tensor_overflow step 3 ", out, re.M))
    losses = _output_of_batch(out, "history loss")
    assert "loss: 6 steps" in losses
    assert "cause [log_of_nonpositive]" in out and "evidence: Log Default/Log-op0 (step 3)" in out
    assert "x: NaN/Inf" not in out.split("Log-op0 nonfinite")[1].split("\nloss (")[0], "a count is not a mark"
    assert "x: NaN/Inf at 3 steps: 3, 4, 5" in out and "loss curve: the loss is" in out and "from step 3" in out
    quiet = _msdbg(env, "check", str(jit_nan_dump), "--nx", "--no-record", "-c", "watch tensor_overflow")
    assert quiet.returncode == 1 and len(list(runs.iterdir())) == 1 and "flight recording" not in quiet.stdout
    bad = _msdbg(env, "open", "--batch", "--nx", "-c", "info hits -w \u00b3")
    assert bad.returncode == 2 and "info hits -w (a watchpoint number): '\u00b3' is not" in bad.stderr + bad.stdout


def _output_of_batch(out: str, title: str) -> str:
    return out[out.index(title.split()[-1] + ":"):]


def _msdbg(env, *args):
    return subprocess.run([sys.executable, "-m", "msdbg", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, PYTHONPATH=str(ROOT), GLOG_v="3", **env))


def test_open_refuses_what_is_not_a_recording(tmp_path):
    bogus = tmp_path / "not.sqlite"
    bogus.write_text("hello")
    done = run_msdbg("open", str(bogus), "--batch")
    assert done.returncode == 2 and done.stderr.startswith(f"msdbg: error: recording {bogus}: not an msdbg recording")
    missing = run_msdbg("open", str(tmp_path / "none.sqlite"), "--batch")
    assert missing.returncode == 2 and "no such file" in missing.stderr
    empty = tmp_path / "empty"
    done = subprocess.run([sys.executable, "-m", "msdbg", "open", "--batch"], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), MSDBG_RUNS_DIR=str(empty)))
    assert done.returncode == 2 and "no recording in" in done.stderr


def test_long_output_goes_through_the_pager_on_a_terminal(jit_nan_dump, tmp_path):
    from test_repl import _pty_session

    record = tmp_path / "nan.msdbg.sqlite"
    assert _msdbg({}, "check", str(jit_nan_dump), "--nx", "--record", str(record), "-c",
                  "watch tensor_overflow").returncode == 1
    screen, code = _pty_session(["-m", "msdbg", "open", str(record)], [
        (r"\(msdbg\)", "help\r"),
        (r"continue +Run until", "q"),  # less shows the first screen and waits; q quits it
        (r"\(msdbg\)[^\n]*$", "info step\r"),
        (r"Training ended", "quit\r"),
    ], env=(("MSDBG_PAGER", "less -R -X"), ("LINES", "24"), ("COLUMNS", "80")))
    assert code == 0
    assert "Training ended; at step 5" in screen


@pytest.mark.slow
def test_display_at_every_pause_and_delete_ranges(tmp_path):
    done = _drive(tmp_path, [
        "watch tensor_overflow", "watch gradient_exploding", "watch tensor_health", "watch weight_overflow",
        "display fc2.bias",
        "display np.abs(`fc1.weight`).max()",
        "step", "step",
        "delete 2-3",
        "info watchpoints",
        "delete",
        "info watchpoints",
        "undisplay 1",
        "step",
        "quit",
    ], "--record", str(tmp_path / "r.sqlite"), str(SCRIPTS / "tiny_loop.py"), "10")
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    pauses = out.split("msdbg: paused after step")[1:]
    assert len(pauses) == 3
    assert all("1: fc2.bias\nParameter" not in p for p in pauses[2:]), "undisplay 1 removed it"
    for pause in pauses[:2]:
        shown = pause.split("(msdbg)", 1)[0]
        assert "1: fc2.bias" in shown and "shape=(1,)" in shown and "2: np.abs(`fc1.weight`).max()" in shown
    assert "2: np.abs(`fc1.weight`).max()" in pauses[2]
    assert "Deleted watchpoints 2, 3" in out
    assert _output_of(out, "info watchpoints").splitlines() == ["1: tensor_overflow", "4: weight_overflow"]
    assert "Deleted 2 watchpoints" in _output_of(out, "delete"), "no question on a pipe"
    assert out.count("No watchpoints.") == 1


def test_recorded_graph_keeps_node_dtypes_and_old_recordings_still_decode(jit_nan_dump):
    import json
    import zlib

    from msdbg.store.dumpdir import DumpDir
    from msdbg.store.recorder import decode_graph, encode_graph

    graph = DumpDir(str(jit_nan_dump)).graph(0, 0)
    dtypes = {name: node.dtype for name, node in graph.nodes.items()}
    assert "float32" in dtypes.values() and "int32" in dtypes.values()  # weights and the optimizer's global_step
    assert {name: node.dtype for name, node in decode_graph(encode_graph(graph)).nodes.items()} == dtypes
    body = json.loads(zlib.decompress(encode_graph(graph)))
    body["nodes"] = [node[:7] for node in body["nodes"]]  # a recording made before dtypes were stored
    old = decode_graph(zlib.compress(json.dumps(body).encode()))
    assert set(old.nodes) == set(graph.nodes) and {node.dtype for node in old.nodes.values()} == {""}
