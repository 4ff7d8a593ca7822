"""``tiny_loop.py`` (argv as there) run under ``msdbg run`` with each dump listing msdbg makes on the training's
thread (``DumpDir.steps``) printed as a line ``listing``, between the loop's ``step N loss L`` lines."""

import runpy
import sys
import threading
from pathlib import Path

from msdbg.store.dumpdir import DumpDir

steps = DumpDir.steps


def counted(self):
    if threading.current_thread() is threading.main_thread():
        print("listing", flush=True)
    return steps(self)


DumpDir.steps = counted
sys.argv = [str(Path(__file__).with_name("tiny_loop.py")), *sys.argv[1:]]
runpy.run_path(sys.argv[0], run_name="__main__")
