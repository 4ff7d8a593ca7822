"""Drive msdbg's real prompt (prompt_toolkit PromptSession) through a pipe input, as keystrokes.

Usage: drive_prompt.py KEYS_FILE [--keep-steps K] [--record PATH] SCRIPT [ARGS...]. KEYS_FILE holds one input line per line; a literal ``\\t`` in
it is a Tab keystroke. Each line is typed when the prompt asks for input: the text up to a Tab, a pause while
completion runs, the rest, then Enter. Each accepted line is printed after ``(msdbg) `` so the test sees what
completion produced.
"""

import sys
import threading
import time

from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from msdbg.frontends.capture_run import RunOptions
from msdbg.frontends.live import run_interactive
from msdbg.repl.app import PromptReader


class TypingReader(PromptReader):
    """The real prompt reading from a pipe that a 'typist' thread fills when the prompt opens."""

    def __init__(self, session, pipe, lines):
        super().__init__(session, input=pipe, output=DummyOutput())
        self.pipe, self.lines = pipe, lines

    def read(self):
        if not self.lines:
            return None
        threading.Thread(target=self._type, args=(self.lines.pop(0),), daemon=True).start()
        line = super().read()
        print(f"(msdbg) {line}", flush=True)
        return line

    def _type(self, line):
        parts = line.split("\\t")
        for index, part in enumerate(parts):
            time.sleep(0.2)
            self.pipe.send_text(part + ("\t" if index < len(parts) - 1 else "\r"))


keys = open(sys.argv[1], encoding="utf-8").read().splitlines()
rest, options = sys.argv[2:], {}
while rest[0] in ("--keep-steps", "--record"):
    options[rest[0][2:].replace("-", "_")] = rest[1]
    rest = rest[2:]
if "keep_steps" in options:
    options["keep_steps"] = int(options["keep_steps"])
with create_pipe_input() as pipe:
    code = run_interactive(RunOptions(rest[0], rest[1:], **options),
                           make_reader=lambda session: TypingReader(session, pipe, keys))
sys.exit(code)
