"""The attach protocol: JSON objects, one per line, over a Unix socket (default) or loopback TCP with a token.

Client → agent: ``{"v": 1, "token": T}`` first, then ``{"cmd": LINE}`` or ``{"report": true}``.
Agent → client: ``{"v": 1, "hello": {...}}`` or ``{"error": MESSAGE}`` (then it closes), ``{"output": TEXT}`` /
``{"error": MESSAGE}`` per command, ``{"report": {...}}``, and events ``{"event": "paused"|"exit", ...}``.
A message is at most ``MAX_REQUEST`` bytes towards the agent and ``MAX_REPLY`` bytes towards the client.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import stat
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, BinaryIO

from msdbg.errors import MsdbgError, UsageError
from msdbg.leftovers import alive, owned_by_me
from msdbg.numeric import is_ascii_int

VERSION = 1
MAX_REQUEST = 1 << 20  # a command line, a greeting
MAX_REPLY = 64 << 20  # one command's output; larger ones are refused with a line
TOKEN_ENV = "MSDBG_TOKEN"
_OURS = re.compile(r"^(\d+)(?:\.sock|-tcp-.+\.token)$")  # names in the socket folder, by the owner's PID


class ProtocolError(MsdbgError):
    """A malformed message. ``fatal``: the stream cannot be read on (a message over the size limit)."""

    def __init__(self, message: str, fatal: bool = False):
        super().__init__(f"protocol error: {message}")
        self.fatal = fatal


@dataclass(frozen=True)
class Address:
    """Where an agent listens: a Unix socket named by PID, or TCP on a loopback address."""

    kind: str  # 'unix' | 'tcp'
    host: str = ""
    port: int = 0
    pid: int | None = None

    def __str__(self) -> str:
        if self.kind == "unix":
            return str(self.pid or "")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp:{host}:{self.port}"


def parse_tcp(text: str, what: str, port_zero: bool) -> Address:
    """``tcp:HOST:PORT`` with HOST a loopback IP (``127.0.0.1``, ``[::1]``, ``localhost``), PORT 0-65535."""
    rest = text[len("tcp:"):]
    host, sep, port = rest.rpartition(":")
    if not sep or not host:
        raise UsageError(f"{what} {text!r}: expected tcp:127.0.0.1:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host == "localhost":
        host = "127.0.0.1"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise UsageError(f"{what} {text!r}: {host!r} is not an IP address (use 127.0.0.1 or [::1])") from None
    if not ip.is_loopback:
        raise UsageError(f"{what} {text!r}: {host} is not a loopback address; msdbg listens on this machine only "
                         "(127.0.0.1 or [::1]); reach it from elsewhere through an SSH tunnel")
    lowest = 0 if port_zero else 1
    if not is_ascii_int(port) or not lowest <= int(port) <= 65535:
        raise UsageError(f"{what} {text!r}: port {port!r} is not a number from {lowest} to 65535")
    return Address("tcp", str(ip), int(port))


def parse_listen(text: str | None) -> Address:
    """``None``/``unix`` → a Unix socket named by this PID; ``tcp:HOST:PORT`` → loopback TCP (port 0: any)."""
    if text is None or text == "unix":
        return Address("unix", pid=os.getpid())
    if not text.startswith("tcp:"):
        raise UsageError(f"--listen {text!r}: expected 'unix' or tcp:127.0.0.1:PORT")
    return parse_tcp(text, "--listen", port_zero=True)


def parse_target(text: str) -> Address:
    """The target of ``msdbg attach``: a PID, or ``tcp:HOST:PORT``."""
    if is_ascii_int(text) and int(text) > 0:
        return Address("unix", pid=int(text))
    if text.startswith("tcp:"):
        return parse_tcp(text, "attach", port_zero=False)
    raise UsageError(f"attach {text!r}: expected the training's PID (a number) or tcp:HOST:PORT")


# ----- the per-user folder ----------------------------------------------------------------------------------
def socket_dir(create: bool = True) -> str:
    """The per-user folder (0700) of sockets and token files, ``$XDG_RUNTIME_DIR/msdbg-UID`` or
    ``/tmp/msdbg-UID``. Created here when missing; refused (UsageError) if it is a link, someone else's, or
    open to others. msdbg never changes the mode of a folder it did not create."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    path = os.path.join(base, f"msdbg-{os.getuid()}")
    created = False
    if create:
        try:
            os.mkdir(path, 0o700)  # never follows a link in the last component: an existing one gives EEXIST
            created = True
        except FileExistsError:
            pass
        except OSError as exc:
            raise UsageError(f"socket folder {path}: cannot create it ({exc.strerror})") from None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return path  # attach: no agent of this user has listened yet
    except OSError as exc:
        kind = "a symbolic link" if os.path.islink(path) else exc.strerror
        raise UsageError(f"socket folder {path}: refused, it is {kind}; remove it (msdbg creates its own)") from None
    try:
        info = os.fstat(fd)
        if created:
            os.fchmod(fd, 0o700)  # only ours: against a umask that removed the owner's bits
        elif not owned_by_me(info):
            raise UsageError(f"socket folder {path}: refused, it belongs to UID {info.st_uid}, not to you "
                             f"(UID {os.getuid()})")
        elif stat.S_IMODE(info.st_mode) != 0o700:
            raise UsageError(f"socket folder {path}: refused, its mode is {stat.S_IMODE(info.st_mode):04o}, not "
                             "0700 (msdbg does not change a folder it did not create: chmod 700 it or remove it)")
    finally:
        os.close(fd)
    return path


def socket_path(pid: int) -> str:
    return os.path.join(socket_dir(), f"{pid}.sock")


def remove_stale_sockets() -> list[int]:
    """Remove the sockets and token files in this user's folder whose process is gone, one line each on stderr;
    return their PIDs."""
    folder, gone = socket_dir(), set()
    for name in os.listdir(folder):
        match = _OURS.match(name)
        if match and not alive(int(match[1])):
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                continue
            gone.add(int(match[1]))
    for pid in sorted(gone):
        print(f"msdbg: removed the stale attach socket of PID {pid} (that process is gone)", file=sys.stderr)
    return sorted(gone)


def token_path(pid: int, address: Address) -> str:
    """The token file of a TCP agent, beside its PID's socket name: ``PID-tcp-HOST-PORT.token``."""
    return os.path.join(socket_dir(), f"{pid}-tcp-{address.host}-{address.port}.token")


def write_token(path: str, token: str) -> None:
    """Write the token to a new file only its owner can read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(token + "\n")


def read_token(path: str) -> str:
    """The token in a file that only its owner can read; UsageError naming the file otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise UsageError(f"token file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "r", encoding="ascii", errors="replace") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"token file {path}: not a regular file")
        if stat.S_IMODE(info.st_mode) & 0o077:
            raise UsageError(f"token file {path}: refused, others may read it (mode "
                             f"{stat.S_IMODE(info.st_mode):04o}); chmod 600 it")
        return handle.read(200).strip()


# ----- messages ---------------------------------------------------------------------------------------------
def encode(message: dict[str, Any]) -> bytes:
    return (json.dumps(message) + "\n").encode()


def send(stream: BinaryIO, message: dict[str, Any]) -> None:
    stream.write(encode(message))
    stream.flush()


def receive(stream: BinaryIO, limit: int) -> dict[str, Any] | None:
    """The next message, or None when the other side closed the connection. ProtocolError for a malformed one
    (fatal when over ``limit`` bytes: the rest of the line cannot be skipped safely)."""
    line = stream.readline(limit + 1)
    if not line:
        return None
    if len(line) > limit and not line.endswith(b"\n"):
        raise ProtocolError(f"a message longer than {limit} bytes", fatal=True)
    return decode(line)


def decode(line: bytes) -> dict[str, Any]:
    """One JSON object; ProtocolError for anything else (bad JSON, nesting too deep, not an object)."""
    try:
        message = json.loads(line)
    except RecursionError:
        raise ProtocolError("a message nested too deeply") from None
    except ValueError:
        raise ProtocolError(f"not a JSON line: {line[:60]!r}") from None
    if not isinstance(message, dict):
        raise ProtocolError("expected a JSON object")
    return message
