"""The command boundary: generated command lines at a paused session over a real dump; only MsdbgError escapes.

Fixed seeds (derandomize); ``MSDBG_HYPOTHESIS_EXAMPLES=N`` runs N examples per property instead of the default.
"""

import dataclasses
import os
import re
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT, SCRIPTS
from msdbg.commands import Options, all_names, run_line
from msdbg.control import RunControl
from msdbg.engine.conditions import CONDITIONS
from msdbg.errors import InternalError, MsdbgError
from msdbg.session import Session
from msdbg.store.dumpdir import DumpDir

EXAMPLES = int(os.environ.get("MSDBG_HYPOTHESIS_EXAMPLES", "1500"))
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

NUMBERS = ["0", "1", "-1", "2", "20", "²", "٣", "1.5", "1e3", "1e999", "-0", "+3", "nan", "inf", "-inf", "0x10",
           "99999999999999999999", "9" * 5000, "1_0", " 1", ""]
TENSORS = ["fc1.weight", "grad:fc1.weight", "Log-op0", "Default/Log-op0", "Log-op0:output:0", "Log-op0:output:²",
           "Log-op0:input:9", "fc1.weight[0, :3]", "fc1.weight[::0]", "fc1.weight[99999999999999999999]",
           "fc1.weight[...,...]", "fc1.weight[", "fc1.weight]", "nosuch", "fc1.weight[1.5]", "fc1.weight[-1]"]
PATTERNS = ["re:a{99999999999}", "re:(", "re:[", "re:*", "re:.*", "fc1*", "*", "[", "on", "'Default/*'"]
SYMBOLS = ["-r", "-a", "--weights", "--gradients", "=", "==", "x=", "=1", "'", '"', "\\", "#", "[", "]", ":", "`",
           "watchpoints", "hits", "step", "ranks", "recommended", "names", "\x00", "\t", "é", "\u202e"]
PARAMS = sorted({p.name for c in CONDITIONS.values() for p in c.params})
# 'save' writes files and 'eval' runs a Python expression (bounded only by the user's patience): neither is fed
# arbitrary words; the stepping commands leave the prompt and are checked apart.
LEAVING = {"continue", "c", "cont", "step", "s", "next", "n", "quit", "q", "exit", "detach"}
COMMAND_WORDS = sorted(set(all_names()) - LEAVING - {"save", "eval", "source"})

word = st.one_of(st.sampled_from(NUMBERS), st.sampled_from(TENSORS), st.sampled_from(PATTERNS),
                 st.sampled_from(SYMBOLS), st.sampled_from(sorted(CONDITIONS)), st.sampled_from(COMMAND_WORDS),
                 st.builds(lambda p, v: f"{p}={v}", st.sampled_from(PARAMS), st.sampled_from(NUMBERS)),
                 st.text(max_size=12))
line = st.builds(lambda head, rest: " ".join([head, *rest]), st.sampled_from(COMMAND_WORDS),
                 st.lists(word, max_size=5))


@pytest.fixture(scope="module")
def paused(jit_nan_dump):
    """A session paused at step 3 of a real dump of the nan_log demo, with its hits evaluated."""
    session = Session(dump=DumpDir(str(jit_nan_dump)), control=RunControl(state="paused"))
    run_line(session, "watch tensor_overflow")
    session.evaluate_keys(session.dump.steps())
    session.current = next(k for k in session.dump.steps() if k.iteration == 3)
    return session


@FUZZ
@given(text=line)
def test_generated_command_lines_raise_only_msdbg_errors(paused, text):
    before = paused.current
    try:
        output = run_line(paused, text)
    except InternalError as exc:
        pytest.fail(f"internal error for {text!r}: {exc}")
    except MsdbgError as exc:
        assert "\n" not in str(exc) or str(exc).count("\n") < 50, text
    else:
        assert isinstance(output, str)
    assert paused.control.state == "paused" and paused.control.resume is None, text
    assert paused.current.rank == before.rank


@pytest.mark.parametrize("text, message", [
    ("hist fc1.weight 0", "hist BINS: '0' is not a whole number between 1 and"),
    ("rank ²", "rank N: '²' is not a whole number >= 0"),
    ("inputs Log-op0 -r ²", "inputs -r DEPTH: '²' is not a whole number >= 0"),
    ("diff fc1.weight ² 3", "diff STEP_A: '²' is not a whole number >= 0"),
    ("print Log-op0:output:²", "Log-op0:output:²"),
    ("watch tensor_overflow on re:a{99999999999}", "bad regular expression"),
    ("watch tensor_all_zero zero_percentage_ge=500", "zero_percentage_ge: '500' is not a number between 0 and 100"),
    ("watch tensor_health nan_count_gt=-1", "nan_count_gt: '-1' is not a number >= 0"),
    ("watch tensor_turbulence warmup=1.5", "warmup: '1.5' is not a whole number >= 0"),
    ("watch tensor_turbulence beta=1", "beta: '1' is not a number in (0, 1)"),
    ("step ٣", "step N: '٣' is not a whole number >= 1"),
    ("delete 1e3", "bad watchpoint '1e3': expected N, A-B, A- or -B with whole numbers"),
    ("delete " + "9" * 5000, "bad watchpoint"),
])
def test_issue_examples_are_one_line_errors(paused, text, message):
    with pytest.raises(MsdbgError) as caught:
        run_line(paused, text)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not isinstance(caught.value, InternalError)


def test_an_internal_error_names_the_command_and_points_to_debug(paused, monkeypatch, capsys):
    from msdbg.commands import registry

    def broken(session, args):
        raise ValueError("cannot compute\nstatistics")

    monkeypatch.setitem(registry.COMMANDS, "stats", dataclasses.replace(registry.COMMANDS["stats"], handler=broken))
    with pytest.raises(InternalError) as caught:
        run_line(paused, "stats fc1.weight")
    assert str(caught.value) == ("internal error in 'stats': ValueError: cannot compute statistics "
                                 "(run msdbg with --debug for the traceback)")
    monkeypatch.setattr(Options, "debug", True)
    with pytest.raises(InternalError):
        run_line(paused, "stats fc1.weight")
    assert "Traceback" in capsys.readouterr().err


def test_watch_while_paused_checks_the_current_step_at_once(paused):
    output = run_line(paused, "watch tensor_too_small max_lt=-1e30 on Log")
    number = int(re.match(r"Watchpoint (\d+): tensor_too_small max_lt=-1e\+30 on Log\n", output)[1])
    assert "checked step 3 of graph 0:" in output
    assert re.search(rf"step 3 \(rank 0, graph 0\): watchpoint {number} tensor_too_small: 1 tensor\n  origin: Log "
                     r"Default/Log-op0", output), output
    assert any(h.watchpoint == number and h.entry.step.iteration == 3 and h.first_offending for h in paused.hits)
    run_line(paused, f"delete {number}")


PLAIN_LOSSES = re.compile(r"step (\d+) loss (\S+)")


@pytest.mark.slow
def test_bad_commands_at_a_real_pause_leave_the_training_bit_identical(tmp_path):
    """Generated bad lines typed at a real paused training: one line each, and the losses equal a plain run."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), GLOG_v="3")
    plain = subprocess.run([sys.executable, str(SCRIPTS / "slow_loop.py"), "6"], env=env, capture_output=True,
                           text=True, timeout=300)
    bad = line.filter(lambda text: "\n" not in text and "\r" not in text and "\x00" not in text)
    lines = []

    @settings(max_examples=200, derandomize=True, database=None)
    @given(text=bad)
    def collect(text):
        lines.append(text)

    collect()
    script = ["step 2", *lines, "watch tensor_overflow", "continue"]
    debugged = subprocess.run([sys.executable, "-m", "msdbg", "run", "--nx", str(SCRIPTS / "slow_loop.py"), "6"],
                              input="\n".join(script) + "\n", env=env, capture_output=True, text=True, timeout=300,
                              cwd=tmp_path)
    assert debugged.returncode == 0, debugged.stderr[-3000:]
    assert "Traceback" not in debugged.stdout + debugged.stderr
    assert "internal error" not in debugged.stdout
    assert PLAIN_LOSSES.findall(debugged.stdout) == PLAIN_LOSSES.findall(plain.stdout)
    assert len(PLAIN_LOSSES.findall(plain.stdout)) == 6
