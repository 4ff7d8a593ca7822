"""The interactive prompt against real CPU training: prompt_toolkit pipe input, stdin pipes, and a pty."""

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time

import numpy as np

from conftest import DEMOS, ROOT, SCRIPTS

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


def _drive(tmp_path, lines, script, *args):
    keys = tmp_path / "keys.txt"
    keys.write_text("\n".join(lines) + "\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), GLOG_v="3")
    return subprocess.run([sys.executable, str(SCRIPTS / "drive_prompt.py"), str(keys), str(script), *args],
                          env=env, capture_output=True, text=True, timeout=300)


def _log_features_at_step_3():
    """Recompute the demo's step-3 features: log of its uniform inputs, with x[5, 2] = 0."""
    rng = np.random.default_rng(0)
    for _ in range(4):
        x = rng.uniform(0.5, 2.0, size=(16, 4)).astype(np.float32)
    x[5, 2] = 0.0
    with np.errstate(divide="ignore"):
        return np.log(x)


def test_prompt_watch_continue_trace_print_complete(tmp_path):
    done = _drive(tmp_path, [
        "watch tensor_overflow",
        r"watch weight_too_large ma\t2",  # Tab completes the parameter name max_gt=
        "continue",
        "trace",
        "print Log-op0[5]",
        r"print fc1.w\t[0, :3]",  # Tab completes the parameter name fc1.weight
        "bogus command",
        "info watchpoints",
        "quit",
    ], DEMOS / "nan_log.py")
    out = done.stdout
    assert done.returncode == 0, done.stderr[-3000:]
    assert "(msdbg) watch weight_too_large max_gt=2" in out and "Watchpoint 2: weight_too_large max_gt=2" in out
    assert "msdbg: watchpoint hit" in out and "step 3 (rank 0, graph 0): watchpoint 1 tensor_overflow" in out
    assert "step 4 loss" not in out, "training paused at the step that hit"
    trace = out.split("(msdbg) trace")[1].split("(msdbg) print")[0]
    assert re.search(r"origin Log Default/Log-op0", trace)
    assert "nan_log.py:23" in trace
    printed = out.split("(msdbg) print Log-op0[5]")[1].split("(msdbg)")[0]
    values = [float(v) for v in re.findall(r"-?inf|-?\d+\.\d+(?:e[-+]\d+)?", printed.split("\n[", 1)[1])]
    np.testing.assert_allclose(values, _log_features_at_step_3()[5], rtol=1e-6)
    assert "(msdbg) print fc1.weight[0, :3]" in out and "shape=(3,)" in out
    assert "*** unknown command 'bogus'" in out
    assert "1: tensor_overflow" in out.split("(msdbg) info watchpoints")[1], "the prompt stayed after the error"
    assert "training stopped at a step boundary" in done.stderr


def test_enter_repeats_step(tmp_path):
    done = _drive(tmp_path, ["step", "", "step 2", "quit"], SCRIPTS / "slow_loop.py", "10")
    paused = re.findall(r"paused after step (\d+)", done.stdout)
    assert paused == ["0", "1", "3"], done.stdout[-3000:]


def test_commands_from_a_stdin_pipe(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), GLOG_v="3")
    done = subprocess.run([sys.executable, "-m", "msdbg", "run", str(DEMOS / "nan_log.py")],
                          input="watch tensor_overflow\ncontinue\ninfo hits\n", env=env,
                          capture_output=True, text=True, timeout=300)
    assert "(msdbg) info hits" in done.stdout and "<- origin" in done.stdout
    assert done.returncode == 0, "end of input quits cleanly"


def _pty_session(argv, steps, timeout=120, env=(("MSDBG_PAGER", ""),)):
    """Run argv in a pseudo-terminal; for each (wait_for, keys) read until wait_for shows, then type keys.
    ``env``: (name, value) pairs for the child (default: no pager, so long outputs show whole)."""
    env = dict(env)
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(PYTHONPATH=str(ROOT), GLOG_v="3", PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm", **env)
        os.chdir(ROOT)
        os.execv(sys.executable, [sys.executable, *argv])
    screen = ""
    deadline = time.time() + timeout
    try:
        for wait_for, keys in steps:
            while not re.search(wait_for, ANSI.sub("", screen)):
                assert time.time() < deadline, f"timed out waiting for {wait_for!r}:\n{ANSI.sub('', screen)[-2000:]}"
                ready, _, _ = select.select([fd], [], [], 0.5)
                if ready:
                    try:
                        screen += os.read(fd, 65536).decode(errors="replace")
                    except OSError:
                        break
            os.write(fd, keys.encode())
        while time.time() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk.decode(errors="replace")
    finally:
        done_pid, status = os.waitpid(pid, os.WNOHANG)
        if done_pid == 0:  # still running: the session did not end as it should
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
    return ANSI.sub("", screen), os.waitstatus_to_exitcode(status)


def test_real_terminal_session():
    screen, code = _pty_session(["-m", "msdbg", "run", str(DEMOS / "nan_log.py")], [
        (r"\(msdbg\)", "watch tensor_overflow\r"),
        (r"Watchpoint 1: tensor_overflow", "continue\r"),
        (r"watchpoint hit[\s\S]*\(msdbg\)", "trace\r"),
        (r"origin Log Default/Log-op0[\s\S]*\(msdbg\)", "quit\r"),
    ])
    assert code == 0
    assert "origin: Log Default/Log-op0" in screen and "nan_log.py:23" in screen
    assert "step 4 loss" not in screen


def test_ctrl_c_pauses_at_the_next_step_boundary():
    screen, code = _pty_session(["-m", "msdbg", "run", str(SCRIPTS / "slow_loop.py"), "200"], [
        (r"\(msdbg\)", "continue\r"),
        (r"step 3 loss", "\x03"),
        (r"paused after step \d+[\s\S]*\(msdbg\)", "info step\r"),
        (r"Training paused", "quit\r"),
    ])
    assert re.search(r"paused after step \d+ \(graph 0\) \(Ctrl-C\)", screen)
    assert "loop finished" not in screen and "Traceback" not in screen
    assert code == 0
