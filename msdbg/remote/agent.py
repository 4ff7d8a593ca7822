"""The agent inside a training process: waits for one client, runs its commands at step boundaries.

A listener thread accepts connections and queues the client's commands; the training thread runs them at each
step boundary (the dump is complete and stable there), and while paused it serves them until the client says
continue, step or detach, or goes away. The training is never hurt by a client: one that disconnects or dies
while training is paused lets it resume after ``RESUME_AFTER`` seconds, with watchpoints kept and hits
remembered for the next attach.
"""

from __future__ import annotations

import os
import queue
import secrets
import socket
import struct
import sys
import threading
from typing import Any

from msdbg.commands import run_line
from msdbg.control import RunControl
from msdbg.errors import MsdbgError
from msdbg.frontends.interrupts import start_thread
from msdbg.frontends.report import summary
from msdbg.remote.protocol import VERSION, parse_listen, receive, send, socket_path
from msdbg.session import Session

RESUME_AFTER = 5.0
_GONE = object()


class Agent:
    """Listens for ``msdbg attach`` and serves one client at a time."""

    def __init__(self, session: Session, control: RunControl, listen: str | None, script: str):
        self.session, self.control, self.script = session, control, script
        self.kind, self.host, self.port = parse_listen(listen)
        self.token = secrets.token_hex(16) if self.kind == "tcp" else None
        self.inbox: queue.Queue = queue.Queue()
        self.client: Any = None
        self.client_pid: int | None = None
        self.client_socket: socket.socket | None = None
        self.lock = threading.Lock()
        self.path: str | None = None

    # ----- listening ----------------------------------------------------------------------------
    def start(self) -> str:
        """Open the socket, start accepting, and return how to attach."""
        if self.kind == "unix":
            self.path = socket_path(os.getpid())
            if os.path.exists(self.path):
                os.unlink(self.path)
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            old_umask = os.umask(0o177)
            try:
                server.bind(self.path)
            finally:
                os.umask(old_umask)
            os.chmod(self.path, 0o600)
            how = f"msdbg attach {os.getpid()}"
        else:
            server = socket.create_server((self.host, self.port))
            self.port = server.getsockname()[1]
            how = f"msdbg attach tcp:{self.host}:{self.port} --token {self.token}"
        server.listen(2)
        self.server = server
        start_thread(self._accept, name="msdbg-agent")
        return how

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            start_thread(self._greet, conn, name="msdbg-agent-client")

    def _greet(self, conn: socket.socket) -> None:
        stream = conn.makefile("rwb")
        try:
            hello = receive(stream)
            problem = self._refusal(hello, conn)
            if problem:
                send(stream, {"error": problem})
                conn.close()
                return
            with self.lock:
                if self.client is not None:
                    send(stream, {"error": f"already attached by PID {self.client_pid}"})
                    conn.close()
                    return
                self.client, self.client_pid, self.client_socket = stream, _peer_pid(conn), conn
            send(stream, {"v": VERSION, "hello": self._status()})
            while True:
                message = receive(stream)
                if message is None:
                    break
                self.inbox.put(message)
        except (OSError, ValueError, MsdbgError):  # ValueError: the stream was closed by detach
            pass
        finally:
            with self.lock:
                if self.client is stream:
                    self.client = None
                    self.inbox.put(_GONE)
            conn.close()

    def _refusal(self, hello: dict | None, conn: socket.socket) -> str | None:
        if hello is None:
            return "no greeting"
        if hello.get("v") != VERSION:
            return f"protocol version {hello.get('v')!r} is not spoken here (this training's msdbg speaks {VERSION})"
        if self.token is not None and not secrets.compare_digest(str(hello.get("token", "")), self.token):
            return "wrong token"
        return None

    def _status(self) -> dict[str, Any]:
        key = self.session.current
        return {"pid": os.getpid(), "script": self.script, "state": self.control.state,
                "step": key.iteration if key else None, "hits": len(self.session.hits),
                "capture": self.session.dump is not None}

    # ----- serving (training thread) ------------------------------------------------------------------
    def at_boundary(self, hits: list) -> None:
        """At a step boundary: run queued commands; pause here if a client is attached and it asked to (pause,
        step N done) or a watchpoint hit."""
        self._serve(block=False)
        if self.client is None or not self.control.should_pause(bool(hits)):
            return
        self.control.pause_requested = False
        self.control.state = "paused"
        lines = summary(hits) if hits else [f"paused after step {self.session.current.iteration}"]
        self._notify({"event": "paused", "summary": "\n".join(lines), "hits": len(hits)})
        self._serve(block=True)
        self.control.state = "running"

    def _serve(self, block: bool) -> None:
        """Run queued commands. Blocking (paused): until one resumes the training, or no client is attached for
        RESUME_AFTER seconds."""
        while True:
            try:
                message = self.inbox.get(timeout=RESUME_AFTER) if block else self.inbox.get_nowait()
            except queue.Empty:
                if block and self.client is not None:
                    continue
                return
            if message is _GONE:
                continue
            self.control.resume = None
            self._handle(message)
            if block and self.control.resume is not None:
                return

    def _handle(self, message: dict) -> None:
        if message.get("report"):
            from msdbg.frontends.batch import report_document

            self._notify({"report": report_document(self.session)})
            return
        line = str(message.get("cmd", ""))
        try:
            output = run_line(self.session, line)
            self._notify({"output": output, "state": self.control.state})
        except MsdbgError as exc:
            self._notify({"error": str(exc)})
        if self.control.resume in ("detach", "quit"):  # a client never ends the training: quit detaches
            self.control.request("continue")
            self._drop_client()

    def _notify(self, message: dict) -> None:
        stream = self.client
        if stream is None:
            return
        try:
            send(stream, message)
        except OSError:
            pass

    def _drop_client(self) -> None:
        """End the client's connection. Shut the socket down rather than close the stream: the reader thread is
        blocked in readline holding the stream's lock; shutdown wakes it with end-of-file and it closes."""
        with self.lock:
            conn, self.client = self.client_socket, None
        if conn is not None:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def finish(self, code: int) -> None:
        """Tell the client the training ended, and remove the socket."""
        self._notify({"event": "exit", "code": code})
        self._drop_client()
        self.server.close()
        if self.path and os.path.exists(self.path):
            os.unlink(self.path)


def _peer_pid(conn: socket.socket) -> int | None:
    if conn.family != socket.AF_UNIX or not hasattr(socket, "SO_PEERCRED"):
        return None
    credentials = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", credentials)[0]


def announce(how: str) -> None:
    print(f"msdbg: listening; attach with: {how}", file=sys.stderr, flush=True)
