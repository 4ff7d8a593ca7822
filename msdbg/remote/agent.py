"""The agent inside a training process: waits for one client, runs its commands at step boundaries.

A listener thread accepts connections and queues the client's commands; the training thread runs them at each
step boundary (the dump is complete and stable there), and while paused it serves them until the client says
continue, step or detach, or goes away. The training is never hurt by a client: replies go through an
``Outbox`` (a client that stops reading is dropped, the training goes on); a client that disconnects or dies
while training is paused lets it resume after ``RESUME_AFTER`` seconds, with watchpoints kept and hits
remembered for the next attach. Who may connect: the user's own processes over the Unix socket (0600 in a
0700 folder, peer UID checked), token holders over loopback TCP (the token is in a 0600 file, never on a
command line; failed attempts in a row are slowed down).
"""

from __future__ import annotations

import os
import queue
import secrets
import signal
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from msdbg.commands import run_line
from msdbg.control import RunControl
from msdbg.errors import MsdbgError, UsageError
from msdbg.threads import start_thread
from msdbg.frontends.report import summary
from msdbg.leftovers import on_termination
from msdbg.remote.outbox import SEND_TIMEOUT, Outbox
from msdbg.remote.protocol import (MAX_REQUEST, VERSION, ProtocolError, parse_listen, receive,
                                   remove_stale_sockets, socket_path, token_path, write_token)
from msdbg.session import Session

RESUME_AFTER = 5.0
GREETING_TIMEOUT = 10.0
FREE_ATTEMPTS = 3  # wrong tokens in a row answered at once; each further one waits twice as long (up to 8 s)
MAX_GREETINGS = 4  # connections being greeted at once; more are closed at once
MAX_QUEUED = 256  # commands waiting for a step boundary; more are refused with a line
_GONE = object()


@dataclass
class Client:
    conn: socket.socket
    outbox: Outbox
    pid: int | None


class Agent:
    """Listens for ``msdbg attach`` and serves one client at a time."""

    def __init__(self, session: Session, control: RunControl, listen: str | None, script: str):
        self.session, self.control, self.script = session, control, script
        self.address = parse_listen(listen)
        self.token = secrets.token_hex(16) if self.address.kind == "tcp" else None
        self.inbox: queue.Queue = queue.Queue(MAX_QUEUED)
        self.client: Client | None = None
        self.lock = threading.Lock()
        self.auth_lock = threading.Lock()
        self.failures = 0
        self.greeting = threading.BoundedSemaphore(MAX_GREETINGS)
        self.paths: list[str] = []
        self.server: socket.socket | None = None
        self.forget_cleanup = lambda: None

    # ----- listening ----------------------------------------------------------------------------
    def start(self) -> str:
        """Open the socket, start accepting, and return how to attach. UsageError (one line) if it cannot."""
        remove_stale_sockets()
        pid = os.getpid()
        try:
            if self.address.kind == "unix":
                server = self._bind_unix(socket_path(pid))
                how = f"msdbg attach {pid}"
            else:
                family = socket.AF_INET6 if ":" in self.address.host else socket.AF_INET
                server = socket.create_server((self.address.host, self.address.port), family=family)
                self.address = type(self.address)("tcp", self.address.host, server.getsockname()[1])
                path = token_path(pid, self.address)
                self.paths.append(path)
                write_token(path, self.token or "")
                how = f"msdbg attach {self.address} (token in {path}; another user needs it in MSDBG_TOKEN)"
        except OSError as exc:
            self.remove_files()
            raise UsageError(f"--listen {self.address}: cannot listen ({exc.strerror or exc})") from None
        self.forget_cleanup = on_termination(self.remove_files)
        server.listen(2)
        self.server = server
        start_thread(self._accept, name="msdbg-agent")
        return how

    def _bind_unix(self, path: str) -> socket.socket:
        if os.path.lexists(path):  # this PID's own: an earlier process with the same PID is gone
            os.unlink(path)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            server.bind(path)
        finally:
            os.umask(old_umask)
        self.paths.append(path)
        return server

    def _accept(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            if not self.greeting.acquire(blocking=False):
                conn.close()
                continue
            start_thread(self._greet, conn, name="msdbg-agent-client")

    def _greet(self, conn: socket.socket) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        stream = conn.makefile("rb")
        client = None
        try:
            try:
                conn.settimeout(GREETING_TIMEOUT)
                problem = self._refusal(receive(stream, MAX_REQUEST), conn)
                conn.settimeout(None)
            except (OSError, MsdbgError) as exc:
                problem = str(exc) if isinstance(exc, MsdbgError) else "no greeting"
            finally:
                self.greeting.release()
            # the outbox reports which client stalled (nothing is posted before ``client`` is bound)
            client = Client(conn, Outbox(conn, lambda reason: self._stalled(client, reason)),
                            _peer_credentials(conn)[0])
            with self.lock:
                if problem is None and self.client is not None:
                    problem = "already attached " + (f"by PID {self.client.pid}" if self.client.pid else "over TCP")
                if problem is None:
                    self.client = client
            if problem is not None:
                client.outbox.post({"error": problem})
                client.outbox.close(wait=1.0)
                return
            client.outbox.post({"v": VERSION, "hello": self._status()})
            self._read(client, stream)
        finally:
            with self.lock:
                if client is not None and self.client is client:
                    self.client = None
                    self._wake()
            if client is not None:
                client.outbox.close()
                client.outbox.done.wait()  # the writer ends within SEND_TIMEOUT; then the socket can be closed
            conn.close()

    def _read(self, client: Client, stream: Any) -> None:
        """Queue the client's commands until it goes; a malformed message is one error line to it."""
        while True:
            try:
                message = receive(stream, MAX_REQUEST)
                if message is None:
                    return
                request = _request(message)
                if "error" in request:
                    client.outbox.post(request)
                    continue
                try:
                    self.inbox.put_nowait((client, request))
                except queue.Full:
                    client.outbox.post({"error": f"{MAX_QUEUED} commands are already waiting for a step boundary; "
                                                 f"this one was dropped: {request.get('cmd', 'report')}"})
            except ProtocolError as exc:
                client.outbox.post({"error": str(exc)})
                if exc.fatal:
                    client.outbox.close(SEND_TIMEOUT, writing_only=True)
                    _discard_input(client.conn)  # closing with unread input would reset the connection: the
                    return  # client would lose the error line
            except (OSError, ValueError):  # the connection was shut down (detach, a stalled client, exit)
                return

    def _refusal(self, hello: dict | None, conn: socket.socket) -> str | None:
        if hello is None:
            return "no greeting"
        uid = _peer_credentials(conn)[1]
        if uid is not None and uid not in (os.getuid(), 0):
            return f"UID {uid} may not attach to a training of UID {os.getuid()}"
        if hello.get("v") != VERSION:
            return f"protocol version {hello.get('v')!r} is not spoken here (this training's msdbg speaks {VERSION})"
        if self.token is None:
            return None
        with self.auth_lock:  # one check at a time, so the delay also holds for parallel attempts
            if self.failures >= FREE_ATTEMPTS:
                time.sleep(min(0.5 * 2 ** (self.failures - FREE_ATTEMPTS), 8.0))
            if secrets.compare_digest(str(hello.get("token", "")).encode(), self.token.encode()):
                self.failures = 0
                return None
            self.failures += 1
        return "wrong token"

    def _stalled(self, client: Client, reason: str) -> None:
        print(f"msdbg: dropped the attached client (PID {client.pid}): {reason}; the training goes on",
              file=sys.stderr, flush=True)
        with self.lock:
            if self.client is client:
                self.client = None
                self._wake()

    def _wake(self) -> None:
        """Wake a paused training thread waiting for commands (it resumes once no client is attached)."""
        try:
            self.inbox.put_nowait(_GONE)
        except queue.Full:  # it has commands to skip: it is awake anyway
            pass

    def _status(self) -> dict[str, Any]:
        key = self.session.current
        return {"pid": os.getpid(), "script": self.script, "state": self.control.state,
                "step": key.iteration if key else None, "rank": key.rank if key else None,
                "graph": key.graph if key else None, "hits": len(self.session.hits),
                "watchpoints": len(self.session.watchpoints.active()), "capture": self.session.dump is not None}

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
        self._notify({"event": "paused", "summary": "\n".join(lines), "hits": len(hits), "status": self._status()})
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
            if message is _GONE or message[0] is not self.client:  # a client that is gone: its commands too
                continue
            self.control.resume = None
            self._handle(message[1])
            if block and self.control.resume is not None:
                return

    def _handle(self, message: dict) -> None:
        if message.get("report"):
            from msdbg.frontends.batch import report_document

            self._notify({"report": report_document(self.session)})
            return
        try:
            reply: dict[str, Any] = {"output": run_line(self.session, str(message.get("cmd", "")))}
        except MsdbgError as exc:
            reply = {"error": str(exc)}
        resume = self.control.resume
        self._notify({**reply, "status": self._status(), "resumed": resume in ("continue", "step"),
                      "detached": resume in ("detach", "quit")})
        if resume in ("detach", "quit"):  # a client never ends the training: quit detaches
            self.control.request("continue")
            self._drop_client()

    def _notify(self, message: dict) -> None:
        client = self.client
        if client is not None:
            client.outbox.post(message)

    def _drop_client(self, wait: float = 0.0) -> None:
        """End the client's connection once its replies are sent."""
        with self.lock:
            client, self.client = self.client, None
        if client is not None:
            client.outbox.close(wait)

    def finish(self, code: int) -> None:
        """Tell the client the training ended, and remove the socket."""
        self._notify({"event": "exit", "code": code})
        self._drop_client(wait=SEND_TIMEOUT + 1)  # a client that reads nothing is dropped (and told of) first
        self.stop()

    def stop(self) -> None:
        """Stop listening and remove the socket and token file (again: harmless)."""
        if self.server is not None:
            self.server.close()
        self.remove_files()
        self.forget_cleanup()

    def remove_files(self) -> None:
        """Remove the socket and the token file (also at SIGTERM)."""
        for path in self.paths:
            try:
                os.unlink(path)
            except OSError:
                pass


def _discard_input(conn: socket.socket, limit: int = 64 << 20, seconds: float = 2.0) -> None:
    """Read and drop what the client still sends (up to ``limit`` bytes or ``seconds``) until it closes."""
    conn.settimeout(seconds)
    try:
        while limit > 0 and (chunk := conn.recv(1 << 16)):
            limit -= len(chunk)
    except OSError:
        pass


def _request(message: dict) -> dict:
    """A client's message as the training thread runs it; a malformed one becomes an error to send back."""
    if isinstance(message.get("cmd"), str) and len(message) == 1:
        return message
    if message.get("report") is True and len(message) == 1:
        return message
    return {"error": 'protocol error: expected {"cmd": "LINE"} or {"report": true}'}


def _peer_credentials(conn: socket.socket) -> tuple[int | None, int | None]:
    """The PID and UID of the process at the other end of a Unix socket ((None, None) over TCP)."""
    if conn.family != socket.AF_UNIX or not hasattr(socket, "SO_PEERCRED"):
        return None, None
    credentials = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _ = struct.unpack("3i", credentials)
    return pid, uid


def announce(how: str) -> None:
    print(f"msdbg: listening; attach with: {how}", file=sys.stderr, flush=True)
