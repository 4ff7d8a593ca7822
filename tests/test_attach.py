"""Attach to a running CPU training: run --listen and msdbg.enable(), a scripted client, and a client killed."""

import json
import os
import re
import select
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

import pytest

from conftest import ROOT, SCRIPTS
from msdbg.errors import UsageError
from msdbg.remote.client import Connection
from msdbg.remote.protocol import read_token, socket_path

ENV = dict(os.environ, PYTHONPATH=str(ROOT), GLOG_v="3")


def _start(*argv):
    return subprocess.Popen([sys.executable, *argv], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _wait_for_socket(process, timeout=60):
    path = socket_path(process.pid)
    deadline = time.time() + timeout
    while not os.path.exists(path):
        assert process.poll() is None, process.stderr.read()
        assert time.time() < deadline, "the agent never listened"
        time.sleep(0.2)
    return path


def _losses(text):
    return re.findall(r"step \d+ loss \S+", text)


def _paused(connection, timeout=60):
    event = connection.event(timeout=timeout)
    assert event is not None and event["event"] == "paused", event
    return event


def test_listen_pause_inspect_watch_detach_keeps_the_training_identical():
    plain = subprocess.run([sys.executable, str(SCRIPTS / "slow_loop.py"), "30"], env=ENV, capture_output=True,
                           text=True, timeout=120)
    training = _start("-m", "msdbg", "run", "--nx", "--listen", str(SCRIPTS / "slow_loop.py"), "30")
    path = _wait_for_socket(training)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    client = Connection(str(training.pid))
    assert client.hello["pid"] == training.pid and client.hello["state"] == "running"
    with pytest.raises(UsageError, match=f"already attached by PID {os.getpid()}"):
        Connection(str(training.pid))
    assert client.command("pause")["output"] == "Pausing at the next step boundary."
    _paused(client)
    printed = client.command("print weight")["output"]
    assert "shape=(1, 4) dtype=float32" in printed
    assert "Watchpoint 1" in client.command("watch weight_too_large max_gt=-100")["output"]
    assert client.status["watchpoints"] == 1 and client.status["state"] == "paused", "the client's toolbar"
    client.command("continue")
    event = _paused(client)
    assert event["hits"] == 2 and "weight_too_large" in event["summary"]
    assert "Detached" in client.command("detach")["output"]
    out, err = training.communicate(timeout=120)
    assert "loop finished" in out and "Traceback" not in err
    assert _losses(out) == _losses(plain.stdout) and len(_losses(out)) == 30, "attaching changed nothing"
    assert training.returncode == 1, "the hits of the watchpoint set by the client are reported at the end"
    assert not os.path.exists(path), "the socket is removed at exit"


def test_enable_in_the_script_and_the_exit_is_reported():
    training = _start(str(SCRIPTS / "enable_loop.py"), "25")
    _wait_for_socket(training)
    client = Connection(str(training.pid))
    client.command("pause")
    _paused(client)
    assert "shape=(1, 4)" in client.command("print weight")["output"]
    assert re.search(r"gradient weight +\(", client.command("list --gradients")["output"]), \
        "gradients from the capture ring"
    client.command("continue")
    event = client.event(timeout=60)
    assert event == {"event": "exit", "code": 0}
    out, err = training.communicate(timeout=60)
    assert training.returncode == 0 and "loop finished" in out and "Traceback" not in err


def test_a_client_killed_while_paused_lets_training_finish():
    training = _start("-m", "msdbg", "run", "--nx", "--listen", str(SCRIPTS / "slow_loop.py"), "30")
    _wait_for_socket(training)
    code = ("import sys, time\nfrom msdbg.remote.client import Connection\nc = Connection(sys.argv[1])\n"
            "c.command('watch tensor_overflow')\nc.command('pause')\nassert c.event(timeout=60)['event'] == 'paused'\n"
            "print('PAUSED', flush=True)\ntime.sleep(600)\n")
    client = subprocess.Popen([sys.executable, "-c", code, str(training.pid)], env=ENV, stdout=subprocess.PIPE,
                              text=True)
    assert client.stdout.readline().strip() == "PAUSED"
    client.send_signal(signal.SIGKILL)
    client.wait()
    out, err = training.communicate(timeout=120)
    assert training.returncode == 0 and "loop finished" in out and "Traceback" not in err
    assert len(_losses(out)) == 30


def test_tcp_needs_the_token_and_the_same_protocol_version():
    training = _start("-m", "msdbg", "run", "--listen=tcp:127.0.0.1:0", "--nx", str(SCRIPTS / "slow_loop.py"),
                      "40")
    line = ""
    while "attach with" not in line:
        line = training.stderr.readline()
        assert line, "no listening line"
    match = re.search(r"msdbg attach (tcp:127\.0\.0\.1:\d+) \(token in (\S+);", line)
    address, token = match[1], read_token(match[2])
    assert token not in line, "the token itself is never printed"
    done = subprocess.run([sys.executable, "-m", "msdbg", "attach", address, "--nx", "-c", "info watchpoints", "-c",
                           "detach"], env=ENV, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "No watchpoints." in done.stdout, "the same user finds the token file"
    assert "Traceback" not in done.stderr
    with pytest.raises(UsageError, match="wrong token"):
        Connection(address, "not-the-token")
    with socket.create_connection(("127.0.0.1", int(address.rsplit(":", 1)[1]))) as raw:
        raw.sendall(json.dumps({"v": 99, "token": token}).encode() + b"\n")
        reply = json.loads(raw.makefile().readline())
        assert "protocol version 99 is not spoken here" in reply["error"]
    client = Connection(address, token)
    assert client.hello["pid"] == training.pid
    client.command("detach")
    training.communicate(timeout=120)
    assert training.returncode == 0


def test_attach_to_a_process_without_agent():
    done = subprocess.run([sys.executable, "-m", "msdbg", "attach", "999999"], env=ENV, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and done.stderr == "msdbg: error: attach 999999: no process with PID 999999\n"
    done = subprocess.run([sys.executable, "-m", "msdbg", "attach", str(os.getpid())], env=ENV, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and f"no msdbg agent for PID {os.getpid()}" in done.stderr


def _collect(stream, lines):
    """Append each line of ``stream`` to ``lines`` from a thread (the test reads both pipes as they come)."""
    def collect():
        for line in stream:
            lines.append(line)

    thread = threading.Thread(target=collect, daemon=True)
    thread.start()
    return thread


def _steps(lines):
    return len(_losses("".join(lines)))


@pytest.mark.slow
def test_a_client_that_never_reads_never_holds_the_training():
    training = _start("-m", "msdbg", "run", "--listen=unix", "--nx", str(SCRIPTS / "slow_loop.py"), "70")
    path = _wait_for_socket(training)
    out, err = [], []
    readers = [_collect(training.stdout, out), _collect(training.stderr, err)]
    deadline = time.time() + 60
    while _steps(out) < 2:
        assert time.time() < deadline, err
        time.sleep(0.1)
    raw = socket.socket(socket.AF_UNIX)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(path)
    raw.sendall(b'{"v": 1}\n')
    time.sleep(1)  # the greeting reply arrives; from now on the client reads nothing
    raw.sendall(b'{"cmd": "eval np.zeros(1).tobytes()*300000"}\n' * 3)  # about 36 MB of replies
    before = _steps(out)
    time.sleep(4)
    assert _steps(out) >= before + 5, "the training keeps stepping while its client reads nothing"
    assert training.wait(timeout=180) == 0
    for reader in readers:
        reader.join(timeout=10)
    raw.close()
    assert _steps(out) == 70 and "Traceback" not in "".join(err)
    assert any("dropped the attached client" in line and "read nothing for 10 s" in line for line in err), err


def _private_env(tmp_path):
    """TMPDIR, the fast dump folder and XDG_RUNTIME_DIR of this test alone, to see what is left there."""
    dirs = {name: tmp_path / name for name in ("tmp", "shm", "xdg")}
    for folder in dirs.values():
        folder.mkdir()
    env = dict(ENV, TMPDIR=str(dirs["tmp"]), MSDBG_FAST_DUMP_DIR=str(dirs["shm"]), XDG_RUNTIME_DIR=str(dirs["xdg"]))
    return env, dirs


def _leftovers(dirs):
    temporary = [p for folder in (dirs["tmp"], dirs["shm"]) for p in folder.iterdir() if p.name.startswith("msdbg-")]
    return [str(p) for p in [*temporary, *dirs["xdg"].rglob("*.sock"), *dirs["xdg"].rglob("*.token")]]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name)
def test_killing_the_training_leaves_nothing_and_the_client_one_line(tmp_path, signum):
    env, dirs = _private_env(tmp_path)
    training = subprocess.Popen([sys.executable, "-m", "msdbg", "run", "--listen=unix", "--nx",
                                 str(SCRIPTS / "slow_loop.py"), "300"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    path = dirs["xdg"] / f"msdbg-{os.getuid()}" / f"{training.pid}.sock"
    deadline = time.time() + 60
    while not path.exists():
        assert training.poll() is None and time.time() < deadline, training.stderr.read()
        time.sleep(0.2)
    attached = signum != signal.SIGINT  # Ctrl-C with a client attached pauses the training; without, ends it
    if attached:
        client = subprocess.Popen([sys.executable, "-m", "msdbg", "attach", str(training.pid), "--nx"], env=env,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert client.stdout.readline().startswith("msdbg: attached to PID")
        client.stdin.write("continue\n")
        client.stdin.flush()
    while _steps([training.stdout.readline()]) == 0:  # the training is stepping
        pass
    training.send_signal(signum)
    _, training_err = training.communicate(timeout=60)
    assert "Traceback" not in training_err, training_err
    if attached:
        out, err = client.communicate(timeout=60)
        assert "Traceback" not in err + out, err + out
        ending = [line for line in (out + err).splitlines() if "training" in line and "attached" not in line]
        assert len(ending) == 1 and "closed the connection" in ending[0], out + err
    else:  # KeyboardInterrupt at a step boundary (130), or MindSpore's own SIGINT handler (SIGTERM)
        assert training.returncode in (130, -signal.SIGTERM)
    if signum == signal.SIGINT:
        assert _leftovers(dirs) == [], "the training removed its own files"
    # SIGTERM: the Python handler that cleans up usually runs, but once in five CI runs (2026-12-01) the dump folder
    # and one more file stayed, as after SIGKILL; what every case guarantees is that the next run removes them.
    nxt = subprocess.run([sys.executable, "-m", "msdbg", "attach", str(training.pid), "--nx"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert nxt.returncode == 2 and "Traceback" not in nxt.stderr
    if signum == signal.SIGKILL:
        assert f"removed the stale attach socket of PID {training.pid}" in nxt.stderr
    assert _leftovers(dirs) == [], "the next run removed what the killed one left"


@pytest.mark.slow
def test_killing_clients_prints_one_line_and_the_training_goes_on():
    training = _start("-m", "msdbg", "run", "--listen=unix", "--nx", str(SCRIPTS / "slow_loop.py"), "100")
    _wait_for_socket(training)
    for signum in (signal.SIGINT, signal.SIGTERM):
        client = subprocess.Popen([sys.executable, "-m", "msdbg", "attach", str(training.pid), "--nx"], env=ENV,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert client.stdout.readline().startswith("msdbg: attached to PID")
        client.send_signal(signum)
        out, err = client.communicate(timeout=60)
        if signum == signal.SIGINT:
            assert client.returncode == 130 and err.strip() == "msdbg: interrupted; detached (the training goes on)"
        else:
            assert client.returncode == -signal.SIGTERM and "Traceback" not in err
    client = subprocess.Popen([sys.executable, "-m", "msdbg", "attach", str(training.pid), "--nx"], env=ENV,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert client.stdout.readline().startswith("msdbg: attached to PID")
    while _steps([training.stdout.readline()]) == 0:  # commands run at step boundaries: wait for the first
        pass
    client.stdin.write("continue\n")  # no watchpoint: it would run to the end
    client.stdin.flush()
    time.sleep(2)
    client.send_signal(signal.SIGINT)  # Ctrl-C while waiting: the training pauses, as at a local prompt
    out, err = client.communicate("detach\n", timeout=60)
    assert client.returncode == 0 and "Traceback" not in err, out + err
    assert "pausing at the next step boundary" in out and "msdbg: training paused" in out and "Detached" in out
    screen = _attach_in_a_terminal(training.pid, "detach\r", "Detached")
    assert re.search(r"step \d+ \| (running|paused) \| watchpoints 0 \| hits 0", screen), "the toolbar shows the training"
    assert "offline" not in screen and "Traceback" not in screen
    deadline = time.time() + 30
    while True:  # the agent frees its slot once it sees the client gone
        try:
            last = Connection(str(training.pid))
            break
        except UsageError:
            assert time.time() < deadline
            time.sleep(0.2)
    assert "Detached" in last.command("detach")["output"]
    out, err = training.communicate(timeout=120)
    # communicate() reads the pipe itself, so lines readline() buffered are not in ``out``: check the last step
    assert training.returncode == 0 and _losses(out)[-1].startswith("step 99 ") and "loop finished" in out
    assert "Traceback" not in err


@pytest.mark.slow
def test_the_readme_attach_example_works_verbatim(tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = re.search(r"## Attach to a running training.*?```console\n(.*?)```", readme, re.S)[1].splitlines()
    (run_at, run_line), (attach_at, attach_line) = [(i, line[2:]) for i, line in enumerate(lines)
                                                    if line.startswith("$ ")]
    shutil.copy(SCRIPTS / "slow_loop.py", tmp_path / "train.py")
    (tmp_path / "xdg").mkdir()
    env = dict(ENV, HOME=str(tmp_path), XDG_RUNTIME_DIR=str(tmp_path / "xdg"))  # no ~/.msdbgrc, own sockets

    def msdbg(line: str) -> list[str]:
        argv = shlex.split(line)
        assert argv[0] == "msdbg"
        return [sys.executable, "-m", "msdbg", *argv[1:]]

    training = subprocess.Popen(msdbg(run_line), cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    pid = str(training.pid)
    assert training.stderr.readline().rstrip("\n") == lines[run_at + 1].replace("4242", pid)
    while _steps([training.stdout.readline()]) == 0:
        assert training.poll() is None
    done = subprocess.run(msdbg(attach_line.replace("4242", pid)), cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)

    def normal(line: str) -> str:
        return re.sub(r"step \d+", "step N", line.replace("4242", pid))

    assert (done.returncode, done.stderr) == (0, "")
    assert [normal(line) for line in done.stdout.splitlines()] == [normal(line) for line in lines[attach_at + 1:]]
    out, err = training.communicate(timeout=120)
    assert training.returncode == 0 and "loop finished" in out and "Traceback" not in err


def _attach_in_a_terminal(pid: int, keys: str, until: str, timeout: float = 60) -> str:
    """Run ``msdbg attach PID`` on a pseudo-terminal, type ``keys`` once its prompt shows, return the screen text
    seen until ``until`` appears and the client exits."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    client = subprocess.Popen([sys.executable, "-m", "msdbg", "attach", str(pid), "--nx"], stdin=slave,
                              stdout=slave, stderr=slave, env=dict(ENV, TERM="xterm", HOME="/nonexistent"),
                              close_fds=True)
    os.close(slave)
    screen, typed, deadline = "", False, time.time() + timeout
    while time.time() < deadline and client.poll() is None:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536).decode(errors="replace")
            except OSError:
                break
            screen += chunk
            if "\x1b[6n" in chunk:  # where is the cursor? (prompt_toolkit draws the toolbar once it knows)
                os.write(master, b"\x1b[1;1R")
        if not typed and "(msdbg)" in screen and "watchpoints" in screen:
            os.write(master, keys.encode())
            typed = True
        if until in screen:
            client.wait(timeout=30)
    os.close(master)
    assert client.wait(timeout=30) == 0 and until in screen, screen
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)
