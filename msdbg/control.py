"""Run control: whether training runs, pauses or stops, as the stepping commands ask."""

from __future__ import annotations

from dataclasses import dataclass


class StopTraining(BaseException):
    """Raised inside the training process at a step boundary to end the script when the user quits."""


@dataclass
class RunControl:
    """The state of a live training, shared by the barrier and the stepping commands."""

    state: str = "not started"  # not started | running | paused | ended
    resume: str | None = None  # set by continue/step/quit: 'continue' | 'step' | 'quit'
    steps_left: int | None = None  # training steps to run before pausing; None: until a hit
    pause_requested: bool = False
    exit_code: int | None = None
    repeatable: str = ""  # the last step/continue line, repeated by an empty line as in pdb
    remote: bool = False  # commands come from an attached client (msdbg attach), not a local prompt

    def request(self, action: str, steps: int | None = None) -> None:
        """Leave the prompt: ``continue`` (until a hit, or ``steps`` more), ``step`` or ``quit``."""
        self.resume = action
        self.steps_left = steps

    def steps_done(self, count: int) -> None:
        if self.steps_left is not None:
            self.steps_left -= count

    def should_pause(self, hit: bool) -> bool:
        return hit or self.pause_requested or (self.steps_left is not None and self.steps_left <= 0)
