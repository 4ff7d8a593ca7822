"""Who may attach, and what a hostile or broken client can do: an agent in this process (no training needed),
raw sockets, and a second, unprivileged user (created when the tests run as root, as in CI)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import msdbg
from conftest import SCRIPTS, run_msdbg
from msdbg.control import RunControl
from msdbg.errors import UsageError
from msdbg.remote import outbox
from msdbg.remote.agent import Agent
from msdbg.remote.client import Connection
from msdbg.remote.protocol import parse_listen, parse_target, read_token, socket_dir
from msdbg.session import Session

OTHER_USER = "msdbg-probe"
SYSTEM_PYTHON = "/usr/bin/python3"  # the second user cannot read root's interpreter; a stdlib client is enough


@pytest.fixture
def runtime_dir(tmp_path, monkeypatch):
    """A private XDG_RUNTIME_DIR for the agent's socket folder."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    return tmp_path


def _agent(listen=None) -> Agent:
    control = RunControl(state="running", remote=True)
    agent = Agent(Session(control=control), control, listen, "train.py")
    agent.start()
    return agent


def _raw(agent: Agent) -> tuple[socket.socket, object]:
    """A connected, greeted raw client: (socket, its reading file)."""
    if agent.address.kind == "unix":
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(agent.paths[0])
    else:
        sock = socket.create_connection((agent.address.host, agent.address.port))
    sock.settimeout(10)
    stream = sock.makefile("rb")
    sock.sendall(json.dumps({"v": 1, "token": agent.token or ""}).encode() + b"\n")
    assert "hello" in json.loads(stream.readline())
    return sock, stream


@pytest.mark.parametrize("argv, message", [
    (["run", "--listen=tcp:127.0.0.1:99999", "x.py"], "port '99999' is not a number from 0 to 65535"),
    (["run", "--listen=tcp:8.8.8.8:0", "x.py"], "8.8.8.8 is not a loopback address"),
    (["run", "--listen=tcp:example.org:0", "x.py"], "'example.org' is not an IP address"),
    (["attach", "abc"], "expected the training's PID (a number) or tcp:HOST:PORT"),
    (["attach", "tcp:127.0.0.1:0"], "port '0' is not a number from 1 to 65535"),
    (["attach", "1", "--token", "s3cret"], "--token: refused, a token on the command line is visible"),
])
def test_bad_addresses_and_a_command_line_token_are_one_line_each(argv, message, tmp_path):
    done = run_msdbg(*argv, "--nx", cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and message in done.stderr, done.stderr


def test_ipv6_loopback_is_a_listening_address(runtime_dir):
    assert parse_listen("tcp:[::1]:0").host == "::1" and str(parse_target("tcp:[::1]:80")) == "tcp:[::1]:80"
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        agent = _agent("tcp:[::1]:0")
    except UsageError as exc:
        pytest.skip(f"IPv6 loopback not usable here: {exc}")
    try:
        client = Connection(str(agent.address), read_token(agent.paths[0]))
        assert client.hello["pid"] == os.getpid()
        client.close()
    finally:
        agent.stop()
    assert not os.path.exists(agent.paths[0]), "the token file goes with the agent"


def test_malformed_messages_are_one_line_each_and_the_agent_goes_on(runtime_dir, capfd):
    agent = _agent()
    try:
        sock, stream = _raw(agent)

        def ask(raw: bytes) -> dict:
            sock.sendall(raw)
            return json.loads(stream.readline())

        assert "nested too deeply" in ask(b"[" * 100_000 + b"]" * 100_000 + b"\n")["error"]
        assert "not a JSON line" in ask(b"{oops\n")["error"]
        assert "expected a JSON object" in ask(b"[1, 2]\n")["error"]
        assert 'expected {"cmd": "LINE"}' in ask(b'{"cmd": 5}\n')["error"]
        sock.sendall(b'{"cmd": "info watchpoints"}\n')
        deadline = time.monotonic() + 10
        while agent.inbox.empty() and time.monotonic() < deadline:  # the reader thread queues it
            time.sleep(0.01)
        agent._serve(block=False)  # what the training thread does at a step boundary
        assert json.loads(stream.readline())["output"] == "No watchpoints."
        try:
            sock.sendall(b"x" * (2 << 20) + b"\n")
        except OSError:  # the agent stops reading after the limit
            pass
        assert "longer than 1048576 bytes" in json.loads(stream.readline())["error"]
        assert stream.readline() == b"", "a message over the limit ends the connection"
    finally:
        agent.stop()
    assert "Traceback" not in capfd.readouterr().err


def test_a_flood_of_commands_is_bounded_and_a_gone_clients_commands_are_not_run(runtime_dir):
    agent = _agent()
    try:
        sock, stream = _raw(agent)
        sock.sendall(b'{"cmd": "watch tensor_overflow"}\n' * 300)
        assert "commands are already waiting for a step boundary" in json.loads(stream.readline())["error"]
        stream.close()
        sock.close()
        deadline = time.monotonic() + 10
        while agent.client is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        agent._serve(block=False)  # the next step boundary
        assert agent.session.watchpoints.active() == [], "nothing of a client that is gone runs"
    finally:
        agent.stop()


def test_wrong_tokens_in_a_row_are_slowed_down(runtime_dir):
    agent = _agent("tcp:127.0.0.1:0")
    try:
        assert stat.S_IMODE(os.stat(agent.paths[0]).st_mode) == 0o600
        took = []
        for _ in range(5):
            start = time.monotonic()
            with pytest.raises(UsageError, match="wrong token"):
                Connection(str(agent.address), "guess")
            took.append(time.monotonic() - start)
        assert max(took[:3]) < 0.4 and took[3] >= 0.45 and took[4] >= 0.95, took
        assert Connection(str(agent.address), read_token(agent.paths[0])).hello["pid"] == os.getpid()
    finally:
        agent.stop()


def test_a_client_that_never_reads_is_dropped_and_never_holds_the_training_thread(runtime_dir, capfd, monkeypatch):
    monkeypatch.setattr(outbox, "SEND_TIMEOUT", 3.0)
    agent = _agent()
    try:
        sock, _ = _raw(agent)  # it never reads again
        start = time.monotonic()
        for _ in range(4):
            agent._notify({"output": "x" * (8 << 20)})  # the training thread answers a command: 32 MB in all
        assert agent.client is not None and time.monotonic() - start < 3.0, "no reply waited for the client"
        deadline = time.monotonic() + 10
        while agent.client is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert agent.client is None
    finally:
        agent.stop()
    assert "dropped the attached client" in capfd.readouterr().err


def test_socket_folder_refused_when_a_link_or_open_to_others_and_left_as_found(runtime_dir, capsys):
    target = runtime_dir / "elsewhere"
    target.mkdir(mode=0o755)
    os.chmod(target, 0o755)
    folder = runtime_dir / f"msdbg-{os.getuid()}"
    folder.symlink_to(target)
    with pytest.raises(UsageError, match="refused, it is a symbolic link"):
        socket_dir()
    folder.unlink()
    folder.mkdir()
    os.chmod(folder, 0o755)
    with pytest.raises(UsageError, match="its mode is 0755, not 0700"):
        socket_dir()
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(folder.stat().st_mode) == 0o755
    folder.rmdir()
    assert stat.S_IMODE(os.stat(socket_dir()).st_mode) == 0o700, "a folder msdbg creates is 0700"
    folder.rmdir()
    folder.symlink_to(target)
    assert msdbg.enable() == "", "msdbg.enable() in a script: no agent, and the training goes on"
    assert "msdbg: not listening: socket folder" in capsys.readouterr().err
    folder.unlink()
    loose = runtime_dir / "token"
    loose.write_text("abc\n")
    os.chmod(loose, 0o644)
    with pytest.raises(UsageError, match="others may read it"):
        read_token(str(loose))


# ----- a second user ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def other_user() -> str:
    """An unprivileged user (created when running as root), or skip with the reason."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create a second user and run as it (CI runs as root)")
    if not (shutil.which("useradd") and shutil.which("runuser") and os.path.exists(SYSTEM_PYTHON)):
        pytest.skip("needs useradd, runuser and /usr/bin/python3")
    try:
        pwd.getpwnam(OTHER_USER)
    except KeyError:
        done = subprocess.run(["useradd", "--system", "--no-create-home", OTHER_USER], capture_output=True, text=True)
        assert done.returncode in (0, 9), done.stderr  # 9: created meanwhile by a parallel run
    return OTHER_USER


def _as(user: str, code: str, *args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
    """Run a stdlib Python snippet as ``user``."""
    return subprocess.Popen(["runuser", "-u", user, "--", SYSTEM_PYTHON, "-c", code, *args], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.fixture
def shared_dir():
    """A folder under /tmp the second user can reach (pytest's tmp_path is root's own)."""
    path = Path(tempfile.mkdtemp(prefix="msdbg-test-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


_CONNECT = """
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as exc:
    print(type(exc).__name__)
    raise SystemExit
s.sendall(b'{"v": 1}\\n')
print(json.loads(s.makefile().readline()).get("error"))
"""


def test_another_user_cannot_attach_over_the_unix_socket(other_user, shared_dir, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(shared_dir))
    agent = _agent()
    try:
        path = agent.paths[0]
        out, err = _as(other_user, _CONNECT, path).communicate(timeout=30)
        assert out.strip() == "PermissionError", err
        os.chmod(os.path.dirname(path), 0o755)  # were the folder and socket opened up by mistake,
        os.chmod(path, 0o666)  # the agent still refuses another UID
        out, err = _as(other_user, _CONNECT, path).communicate(timeout=30)
        uid = pwd.getpwnam(other_user).pw_uid
        assert out.strip() == f"UID {uid} may not attach to a training of UID {os.getuid()}", err
        assert agent.client is None
    finally:
        agent.stop()


_TOKEN_CLIENT = """
import json, os, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(json.dumps({"v": 1, "token": os.environ["MSDBG_TOKEN"]}).encode() + b"\\n")
print(json.loads(s.makefile().readline())["hello"]["pid"], flush=True)
sys.stdin.readline()
"""


def test_a_token_holder_attaches_over_tcp_and_the_token_is_on_no_command_line(other_user, runtime_dir):
    agent = _agent("tcp:127.0.0.1:0")
    try:
        token = read_token(agent.paths[0])
        client = _as(other_user, _TOKEN_CLIENT, str(agent.address.port), env=dict(os.environ, MSDBG_TOKEN=token))
        assert client.stdout.readline().strip() == str(os.getpid()), client.stderr.read()
        assert agent.client is not None, "attached"
        exposed = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if token.encode() in cmdline.read_bytes():
                    exposed.append(str(cmdline))
            except OSError:  # a process that ended meanwhile
                pass
        assert exposed == []
        client.communicate("\n", timeout=30)
    finally:
        agent.stop()


def test_a_symlinked_socket_folder_is_refused_and_its_target_left_untouched(other_user, shared_dir):
    runtime, target = shared_dir / "runtime", shared_dir / "target"
    runtime.mkdir()
    os.chmod(runtime, 0o1777)  # a world-writable folder, as XDG_RUNTIME_DIR pointing to /tmp would be
    target.mkdir()
    os.chmod(target, 0o755)
    planted = runtime / f"msdbg-{os.getuid()}"
    code = "import os, sys; os.symlink(sys.argv[1], sys.argv[2])"
    assert _as(other_user, code, str(target), str(planted)).wait(timeout=30) == 0
    env_runtime = {"XDG_RUNTIME_DIR": str(runtime)}
    done = _run_listen(env_runtime)
    assert done.returncode == 2 and "is a symbolic link" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o755 and list(target.iterdir()) == []
    planted.unlink()
    assert _as(other_user, "import os, sys; os.mkdir(sys.argv[1], 0o700)", str(planted)).wait(timeout=30) == 0
    done = _run_listen(env_runtime)
    assert done.returncode == 2 and f"belongs to UID {pwd.getpwnam(other_user).pw_uid}" in done.stderr, done.stderr


def _run_listen(extra_env: dict) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent), **extra_env)
    return subprocess.run([sys.executable, "-m", "msdbg", "run", "--listen=unix", "--nx", str(SCRIPTS / "slow_loop.py")],
                          env=env, capture_output=True, text=True, timeout=120)
