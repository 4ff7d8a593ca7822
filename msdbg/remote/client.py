"""``msdbg attach``: a client of the agent; the same commands as the prompt, run inside the training."""

from __future__ import annotations

import json
import queue
import sys
import threading

from msdbg.commands.scripts import CommandSource
from msdbg.errors import UsageError
from msdbg.remote.protocol import VERSION, connect, receive, send

REPLY_TIMEOUT = 600.0


class Connection:
    """An attached client: send command lines, receive replies; events (paused, exit) are queued apart."""

    def __init__(self, target: str, token: str | None = None):
        self.socket = connect(target)
        self.socket.settimeout(None)
        self.stream = self.socket.makefile("rwb")
        send(self.stream, {"v": VERSION, "token": token or ""})
        hello = receive(self.stream)
        if hello is None or "error" in hello:
            reason = hello["error"] if hello else "the agent closed the connection"
            raise UsageError(f"attach {target}: {reason}")
        self.hello = hello["hello"]
        self.replies: queue.Queue = queue.Queue()
        self.events: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            while (message := receive(self.stream)) is not None:
                (self.events if "event" in message else self.replies).put(message)
        except (OSError, UsageError):
            pass
        self.events.put({"event": "closed"})
        self.replies.put({"error": "the training closed the connection"})

    def command(self, line: str, timeout: float = REPLY_TIMEOUT) -> dict:
        send(self.stream, {"cmd": line})
        return self.replies.get(timeout=timeout)

    def report(self, timeout: float = REPLY_TIMEOUT) -> dict:
        send(self.stream, {"report": True})
        return self.replies.get(timeout=timeout)["report"]

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


def attach(target: str, token: str | None, commands: list[CommandSource], batch: bool, json_out: str | None) -> int:
    """Attach, run the setup commands, then a prompt (or, with --batch, report and detach)."""
    connection = Connection(target, token)
    hello = connection.hello
    print(f"msdbg: attached to PID {hello['pid']} ({hello['script']}): training {hello['state']}, "
          f"step {hello['step']}, {hello['hits']} hits so far", flush=True)
    try:
        for source in commands:
            reply = connection.command(source.text)
            if "error" in reply:
                raise UsageError(f"{source.where(None)}: {reply['error']}")
            if reply.get("output"):
                print(reply["output"], file=sys.stderr)
        if batch:
            document = connection.report()
            if json_out:
                with open(json_out, "w", encoding="utf-8") as handle:
                    json.dump(document, handle, indent=1)
            print(f"msdbg: {len(document['hits'])} hits so far")
            connection.command("detach")
            return 1 if document["hits"] else 0
        return _interact(connection)
    finally:
        connection.close()


def _interact(connection: Connection) -> int:
    from msdbg.repl.app import make_reader
    from msdbg.session import Session

    reader = make_reader(Session())  # the prompt completes commands, conditions and parameters locally
    while True:
        _print_events(connection)
        line = reader.read()
        if line is None or line.strip() in ("quit", "q", "exit"):
            connection.command("detach", timeout=30)
            return 0
        if not line.strip():
            continue
        reply = connection.command(line)
        print(f"*** {reply['error']}" if "error" in reply else reply.get("output", ""), flush=True)
        if line.strip() == "detach" or reply.get("error") == "the training closed the connection":
            return 0
        if "error" not in reply and line.split()[0] in RESUMING:
            _wait_for_pause(connection)


RESUMING = {"continue", "c", "cont", "step", "s", "next", "n"}


def _wait_for_pause(connection: Connection) -> None:
    """After continue/step, wait (as a local prompt does) until the training pauses again or ends."""
    event = connection.event()
    connection.events.put(event)
    _print_events(connection)


def _print_events(connection: Connection) -> None:
    while (event := connection.event(timeout=0)) is not None:
        if event["event"] == "paused":
            print("msdbg: training paused\n" + event["summary"], flush=True)
        elif event["event"] == "exit":
            print(f"msdbg: the training exited with code {event['code']}", flush=True)
