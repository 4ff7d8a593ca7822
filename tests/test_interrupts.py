"""Ctrl-C in a real terminal (pty) against a real tight @ms.jit loop: it pauses, never kills, never steps."""

import os
import pty
import re
import select
import signal
import sys
import time

import pytest

from conftest import ROOT, SCRIPTS

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


class Terminal:
    """``python -m msdbg ARGS`` in a pseudo-terminal: type keys, wait for text."""

    def __init__(self, *args: str):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.environ.update(PYTHONPATH=str(ROOT), GLOG_v="3", PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm")
            os.chdir(ROOT)
            os.execv(sys.executable, [sys.executable, "-m", "msdbg", *args])
        self.raw = ""

    @property
    def screen(self) -> str:
        return ANSI.sub("", self.raw)

    def pump(self, seconds: float) -> None:
        deadline = time.time() + seconds
        while time.time() < deadline and self._read(min(0.2, max(deadline - time.time(), 0.01))):
            pass

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:
            return False
        self.raw += chunk.decode(errors="replace")
        return bool(chunk)

    def wait_for(self, pattern: str, since: int = 0, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while not re.search(pattern, ANSI.sub("", self.raw[since:])):
            assert time.time() < deadline, f"timed out waiting for {pattern!r}:\n{self.screen[-2000:]}"
            assert self._read(0.2), f"the process ended before {pattern!r}:\n{self.screen[-2000:]}"

    def type(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def exit_code(self, timeout: float = 60) -> int:
        deadline = time.time() + timeout
        while time.time() < deadline:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            self._read(0.2)
        os.kill(self.pid, signal.SIGKILL)
        raise AssertionError(f"msdbg did not exit:\n{self.screen[-2000:]}")


@pytest.mark.slow
def test_ten_ctrl_c_during_continue_pause_ten_times():
    term = Terminal("run", "--nx", str(SCRIPTS / "tight_loop.py"), "1000000")
    term.wait_for(r"\(msdbg\)")
    pauses = 0
    for press in range(10):
        mark = len(term.raw)
        term.type("continue\r")
        term.pump(0.6)
        term.type("\x03")
        term.wait_for(r"paused after step \d+ \(graph 0\) \(Ctrl-C\)[\s\S]*\(msdbg\)", since=mark, timeout=60)
        pauses += 1
    term.type("quit\r")
    code = term.exit_code()
    assert pauses == 10
    assert code == 0, term.screen[-2000:]
    assert "Terminated" not in term.screen and "Traceback" not in term.screen
    steps = [int(s) for s in re.findall(r"paused after step (\d+)", term.screen)]
    assert steps == sorted(steps) and len(set(steps)) == 10, steps


@pytest.mark.slow
def test_ctrl_c_at_the_prompt_clears_a_half_typed_line_and_does_not_step_and_typeahead_is_dropped():
    term = Terminal("run", "--nx", str(SCRIPTS / "slow_loop.py"), "8")
    term.wait_for(r"\(msdbg\)")
    term.type("step")  # half typed, then Ctrl-C
    term.pump(0.3)
    term.type("\x03")
    term.pump(0.3)
    term.type("\r")  # an empty line right after Ctrl-C: repeats nothing
    term.pump(0.5)
    mark = len(term.raw)
    term.type("info step\r")
    term.wait_for(r"Training not started; no step has run yet", since=mark)
    term.type("step 3\r")
    term.wait_for(r"step 0 loss", since=mark)
    term.type("delete 99\r")  # typed while the training runs: dropped at the pause, not run there
    term.wait_for(r"paused after step 2", since=mark)
    term.pump(1.0)
    assert "no watchpoint 99" not in term.screen, "keys typed during training were replayed at the pause"
    mark = len(term.raw)
    term.type("\x03")  # at the prompt after a step: clears, does not repeat the step
    term.pump(0.3)
    term.type("info step\r")
    term.wait_for(r"at step 2 \(graph 0", since=mark)
    term.type("quit\r")
    assert term.exit_code() == 0
    assert "step 3 loss" not in term.screen


@pytest.mark.slow
def test_ctrl_c_under_listen_without_a_client_interrupts_at_a_boundary_and_reports():
    term = Terminal("run", "--nx", "--listen", str(SCRIPTS / "slow_loop.py"), "200")
    term.wait_for(r"step 3 loss")
    term.type("\x03")
    term.wait_for(r"Ctrl-C at a step boundary, no client attached[\s\S]*training interrupted")
    assert term.exit_code() == 130
    assert "loop finished" not in term.screen and "Traceback" not in term.screen
    assert re.search(r"msdbg: 0 hits in \d+ steps", term.screen), "the report is still written"
