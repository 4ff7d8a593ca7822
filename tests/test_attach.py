"""Attach to a running CPU training: run --listen and msdbg.enable(), a scripted client, and a client killed."""

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time

import pytest

from conftest import ROOT, SCRIPTS
from msdbg.errors import UsageError
from msdbg.remote.client import Connection
from msdbg.remote.protocol import socket_path

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
    training = _start("-m", "msdbg", "run", "--listen", "--nx", str(SCRIPTS / "slow_loop.py"), "30")
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
    training = _start("-m", "msdbg", "run", "--listen", "--nx", str(SCRIPTS / "slow_loop.py"), "30")
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
    training = _start("-m", "msdbg", "run", "--listen", "tcp:127.0.0.1:0", "--nx", str(SCRIPTS / "slow_loop.py"),
                      "40")
    line = ""
    while "attach with" not in line:
        line = training.stderr.readline()
        assert line, "no listening line"
    match = re.search(r"msdbg attach (tcp:127\.0\.0\.1:\d+) --token (\w+)", line)
    address, token = match[1], match[2]
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
    assert done.returncode == 2 and "no msdbg agent for PID 999999" in done.stderr
