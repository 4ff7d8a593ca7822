"""Messages to one attached client, written by a thread of their own: the training never waits for a client.

The training thread only queues a message (``post``). The writer sends it without blocking; a client that takes
nothing for ``SEND_TIMEOUT`` seconds, or lets more than ``MAX_PENDING`` bytes pile up, is dropped (``on_stall``
says why) and the training goes on.
"""

from __future__ import annotations

import collections
import select
import socket
import threading
from typing import Any, Callable

from msdbg.remote.protocol import MAX_REPLY, encode
from msdbg.threads import start_thread

SEND_TIMEOUT = 10.0
MAX_PENDING = 2 * MAX_REPLY


class Outbox:
    """A bounded queue of encoded messages and the thread that writes them to ``conn``."""

    def __init__(self, conn: socket.socket, on_stall: Callable[[str], None]):
        self.conn, self.on_stall = conn, on_stall
        self.queue: collections.deque[bytes] = collections.deque()
        self.pending = 0
        self.closing = False  # close once everything queued is sent
        self.how = socket.SHUT_RDWR
        self.done = threading.Event()
        self.cond = threading.Condition()
        start_thread(self._run, name="msdbg-outbox")

    def post(self, message: dict[str, Any]) -> None:
        """Queue a message; one over ``MAX_REPLY`` bytes is replaced by an error saying so."""
        data = encode(message)
        if len(data) > MAX_REPLY:
            data = encode({"error": f"the reply is {len(data) >> 20} MB, over the {MAX_REPLY >> 20} MB limit of one "
                                    "message; ask for less (a slice, fewer bins)"})
        with self.cond:
            if self.closing or self.done.is_set():
                return
            if self.pending + len(data) > MAX_PENDING:
                self.closing = True
                self.queue.clear()
                stalled = True
            else:
                self.queue.append(data)
                self.pending += len(data)
                stalled = False
            self.cond.notify()
        if stalled:
            self._stop(f"it left {self.pending >> 20} MB of replies unread")

    def close(self, wait: float = 0.0, writing_only: bool = False) -> None:
        """Close the connection once what is queued has been sent (waiting at most ``wait`` seconds here);
        ``writing_only``: shut down only this side's writing (the reader still drains what the client sends)."""
        with self.cond:
            self.closing = True
            if writing_only:
                self.how = socket.SHUT_WR
            self.cond.notify()
        self.done.wait(wait)

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.queue and not self.closing:
                    self.cond.wait()
                if not self.queue:
                    break
                data = self.queue.popleft()
            try:
                sent = self._write(data)
            except OSError:  # the client went away: the reader thread notices it too
                break
            with self.cond:
                self.pending -= len(data)
            if not sent:
                self._stop(f"it read nothing for {SEND_TIMEOUT:.0f} s")
                return
        self._shutdown()

    def _write(self, data: bytes) -> bool:
        """Send all of ``data``; False if the client took nothing for SEND_TIMEOUT seconds."""
        view = memoryview(data)
        poller = select.poll()
        poller.register(self.conn.fileno(), select.POLLOUT)
        while view:
            if not poller.poll(SEND_TIMEOUT * 1000):
                return False
            try:
                view = view[self.conn.send(view, socket.MSG_DONTWAIT):]
            except BlockingIOError:
                continue
        return True

    def _stop(self, reason: str) -> None:
        with self.cond:
            self.closing = True
            self.queue.clear()
            self.cond.notify()
        self.on_stall(reason)  # first: once shut down, the reader thread forgets the client
        self._shutdown()

    def _shutdown(self) -> None:
        """Shut the socket down (not close: the reader thread may be blocked in it; it then sees end-of-file)."""
        try:
            self.conn.shutdown(self.how)
        except OSError:
            pass
        self.done.set()
