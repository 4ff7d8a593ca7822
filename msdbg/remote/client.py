"""``msdbg attach``: a client of the agent; the same commands as the prompt, run inside the training.

Whatever happens to the connection (the training ends or is killed, Ctrl-C, a detach), the client says so in
one line; it never shows a traceback.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import sys
import threading
from typing import Any

from msdbg.capture.fastdump import sweep_leftovers
from msdbg.commands.scripts import CommandSource
from msdbg.errors import MsdbgError, UsageError
from msdbg.leftovers import alive
from msdbg.remote.protocol import (MAX_REPLY, TOKEN_ENV, VERSION, Address, ProtocolError, encode, parse_target,
                                   read_token, receive, remove_stale_sockets, socket_dir)

REPLY_TIMEOUT = 600.0
CONNECT_TIMEOUT = 10.0


class ConnectionLost(MsdbgError):
    """The training closed the connection (it ended, was killed, or dropped this client)."""


def _connect(target: str, address: Address) -> socket.socket:
    """A connected socket to the agent at ``address``; UsageError naming the target if there is none."""
    if address.kind == "tcp":
        try:
            return socket.create_connection((address.host, address.port), timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            raise UsageError(f"attach {target}: cannot connect ({exc.strerror or exc})") from None
    path = os.path.join(socket_dir(create=False), f"{address.pid}.sock")
    advice = "start the training with 'msdbg run --listen' or call msdbg.enable() in it"
    if not os.path.lexists(path):
        if not alive(address.pid):
            raise UsageError(f"attach {target}: no process with PID {target}")
        raise UsageError(f"attach {target}: no msdbg agent for PID {target} ({path} does not exist); {advice}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(CONNECT_TIMEOUT)
    try:
        sock.connect(path)
        return sock
    except ConnectionRefusedError:
        sock.close()
        try:
            os.unlink(path)
        except OSError:  # removed meanwhile
            pass
        print(f"msdbg: removed the stale socket {path} (no agent listened on it)", file=sys.stderr)
        raise UsageError(f"attach {target}: no msdbg agent for PID {target}; {advice}") from None
    except OSError as exc:
        sock.close()
        raise UsageError(f"attach {target}: cannot connect to {path} ({exc.strerror or exc})") from None


def find_token(address: Address, token_file: str | None) -> str:
    """The token for a TCP agent: ``--token-file``, else ``MSDBG_TOKEN``, else the file the agent wrote in this
    user's socket folder. Empty for a Unix socket (the folder's permissions guard it)."""
    if address.kind != "tcp":
        return ""
    if token_file:
        return read_token(token_file)
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV]
    folder = socket_dir(create=False)
    suffix = f"-tcp-{address.host}-{address.port}.token"
    names = [n for n in (os.listdir(folder) if os.path.isdir(folder) else []) if n.endswith(suffix)]
    if len(names) != 1:
        raise UsageError(f"attach {address}: no token; give it with {TOKEN_ENV}=... or --token-file FILE (the "
                         "training printed where its token file is)")
    return read_token(os.path.join(folder, names[0]))


class Connection:
    """An attached client: send command lines, receive replies; events (paused, exit) are queued apart."""

    def __init__(self, target: str, token: str | None = None):
        address = parse_target(target)
        self.target = target
        self.socket = _connect(target, address)
        self.stream = self.socket.makefile("rb")
        hello = None
        try:
            self.socket.sendall(encode({"v": VERSION, "token": token or ""}))
            hello = receive(self.stream, MAX_REPLY)
        except (OSError, ProtocolError):
            pass
        if hello is None or "error" in hello:
            self.close()
            reason = hello["error"] if hello else "the agent closed the connection"
            raise UsageError(f"attach {target}: {reason}")
        self.socket.settimeout(None)
        self.hello: dict[str, Any] = hello["hello"]
        self.status: dict[str, Any] = dict(self.hello)
        self.replies: queue.Queue = queue.Queue()
        self.events: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True, name="msdbg-attach").start()

    def _read(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            while (message := receive(self.stream, MAX_REPLY)) is not None:
                self.status.update(message.get("status") or {})
                if message.get("event") == "exit":
                    self.status["state"] = f"ended (exit code {message['code']})"
                (self.events if "event" in message else self.replies).put(message)
        except (OSError, ValueError, MsdbgError):
            pass
        self.status.setdefault("state", "")
        if not self.status["state"].startswith("ended"):
            self.status["state"] = "connection lost"
        self.events.put({"event": "closed"})
        self.replies.put({"closed": True})

    def command(self, line: str, timeout: float = REPLY_TIMEOUT) -> dict:
        """Run one command line in the training; its reply (``output`` or ``error``). ConnectionLost if gone."""
        return self._ask({"cmd": line}, timeout)

    def report(self, timeout: float = REPLY_TIMEOUT) -> dict:
        reply = self._ask({"report": True}, timeout)
        if "report" not in reply:
            raise UsageError(f"attach {self.target}: {reply.get('error', 'no report')}")
        return reply["report"]

    def _ask(self, message: dict, timeout: float) -> dict:
        try:
            self.socket.sendall(encode(message))
            reply = self.replies.get(timeout=timeout)
        except OSError:
            reply = {"closed": True}
        except queue.Empty:
            raise ConnectionLost(f"attach {self.target}: no reply in {timeout:.0f} s") from None
        if "closed" in reply:
            raise ConnectionLost(f"attach {self.target}: the training closed the connection (it ended, was "
                                 "killed, or dropped this client)")
        return reply

    def event(self, timeout: float | None = None) -> dict | None:
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        try:
            self.socket.close()
        except OSError:
            pass


def attach(target: str, token_file: str | None, commands: list[CommandSource], batch: bool,
           json_out: str | None) -> int:
    """Attach, run the setup commands, then a prompt (or, with --batch, report and detach). Ctrl-C detaches
    (the training goes on); exit 130."""
    address = parse_target(target)
    remove_stale_sockets()
    sweep_leftovers()  # what a killed training left behind
    connection = None
    try:
        connection = Connection(target, find_token(address, token_file))
        hello = connection.hello
        print(f"msdbg: attached to PID {hello['pid']} ({hello['script']}): training {hello['state']}, "
              f"step {hello['step']}, {hello['hits']} hits so far", flush=True)
        for source in commands:
            reply = connection.command(source.text)
            if "error" in reply:
                raise UsageError(f"{source.where(None)}: {reply['error']}")
            if reply.get("output"):
                print(reply["output"], flush=True)
            if reply.get("detached"):
                return 0
            if reply.get("resumed") and _wait_for_pause(connection):
                return 0
        if batch:
            document = connection.report()
            if json_out:
                with open(json_out, "w", encoding="utf-8") as handle:
                    json.dump(document, handle, indent=1)
            print(f"msdbg: {len(document['hits'])} hits so far")
            connection.command("detach")
            return 1 if document["hits"] else 0
        return _interact(connection)
    except KeyboardInterrupt:
        print("\nmsdbg: interrupted; detached (the training goes on)", file=sys.stderr)
        return 130
    finally:
        if connection is not None:
            connection.close()


def _interact(connection: Connection) -> int:
    from msdbg.repl.app import make_reader, toolbar_line
    from msdbg.session import Session

    def toolbar() -> str:
        status = connection.status
        return toolbar_line(status.get("rank"), status.get("graph"), status.get("step"), status.get("state", "?"),
                            status.get("watchpoints", 0), status.get("hits", 0))

    reader = make_reader(Session(), toolbar)  # completes commands, conditions and parameters locally
    while True:
        if _print_events(connection):
            return 0
        line = reader.read()
        if line is None:
            line = "detach"
        if not line.strip():
            continue
        reply = connection.command(line)
        print(f"*** {reply['error']}" if "error" in reply else reply.get("output", ""), flush=True)
        if reply.get("detached"):
            return 0
        if reply.get("resumed") and _wait_for_pause(connection):
            return 0


def _wait_for_pause(connection: Connection) -> bool:
    """After continue/step, wait (as a local prompt does) until the training pauses again or ends; Ctrl-C asks
    it to pause at the next step boundary. True when the training has ended."""
    while True:
        try:
            event = connection.event()
        except KeyboardInterrupt:
            print("\nmsdbg: pausing at the next step boundary", flush=True)
            connection.command("pause")
            continue
        connection.events.put(event)
        return _print_events(connection)


def _print_events(connection: Connection) -> bool:
    """Print the queued events; True when the training has ended (the connection is over)."""
    while (event := connection.event(timeout=0)) is not None:
        if event["event"] == "paused":
            print("msdbg: training paused\n" + event["summary"], flush=True)
        elif event["event"] == "exit":
            print(f"msdbg: the training exited with code {event['code']}", flush=True)
            return True
        elif event["event"] == "closed":
            raise ConnectionLost(f"attach {connection.target}: the training closed the connection (it was killed, "
                                 "or dropped this client)")
    return False
