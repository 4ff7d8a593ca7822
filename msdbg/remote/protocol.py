"""The attach protocol: JSON objects, one per line, over a Unix socket (default) or loopback TCP with a token.

Client → agent: ``{"v": 1, "token": T}`` first, then ``{"cmd": LINE}`` or ``{"report": true}``.
Agent → client: ``{"v": 1, "hello": {...}}`` or ``{"error": MESSAGE}`` (then it closes), ``{"output": TEXT}`` /
``{"error": MESSAGE}`` per command, ``{"report": {...}}``, and events ``{"event": "paused"|"exit", ...}``.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from typing import Any, BinaryIO

from msdbg.errors import UsageError
from msdbg.numeric import is_ascii_int

VERSION = 1


def socket_dir() -> str:
    """A per-user directory (mode 0700) for the agents' sockets."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    path = os.path.join(base, f"msdbg-{os.getuid()}")
    os.makedirs(path, mode=0o700, exist_ok=True)
    info = os.stat(path)
    if info.st_uid != os.getuid():
        raise UsageError(f"socket directory {path}: owned by another user")
    os.chmod(path, 0o700)
    return path


def socket_path(pid: int) -> str:
    return os.path.join(socket_dir(), f"{pid}.sock")


def parse_listen(text: str | None) -> tuple[str, str, int]:
    """``None`` → a Unix socket named by PID; ``tcp:HOST:PORT`` → TCP, loopback only unless asked explicitly."""
    if text is None or text == "unix":
        return "unix", "", 0
    kind, _, rest = text.partition(":")
    host, _, port = rest.rpartition(":")
    if kind != "tcp" or not host or not is_ascii_int(port):
        raise UsageError(f"--listen {text!r}: expected 'tcp:127.0.0.1:PORT'")
    return "tcp", host, int(port)


def connect(target: str) -> socket.socket:
    """Connect to ``PID`` (its Unix socket) or ``tcp:HOST:PORT``; UsageError naming the target if impossible."""
    try:
        if is_ascii_int(target):
            path = socket_path(int(target))
            if not os.path.exists(path):
                raise UsageError(f"attach {target}: no msdbg agent for PID {target} ({path} does not exist); start "
                                 "the training with 'msdbg run --listen' or call msdbg.enable() in it")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(path)
            return sock
        kind, host, port = parse_listen(target)
        return socket.create_connection((host, port), timeout=10)
    except OSError as exc:
        raise UsageError(f"attach {target}: cannot connect ({exc.strerror or exc})") from None


def send(stream: BinaryIO, message: dict[str, Any]) -> None:
    stream.write((json.dumps(message) + "\n").encode())
    stream.flush()


def receive(stream: BinaryIO) -> dict[str, Any] | None:
    """The next message, or None when the other side closed the connection."""
    line = stream.readline()
    if not line:
        return None
    try:
        message = json.loads(line)
    except ValueError:
        raise UsageError(f"protocol error: not a JSON line: {line[:80]!r}") from None
    if not isinstance(message, dict):
        raise UsageError("protocol error: expected a JSON object")
    return message
