"""dump_sides.py, with msdbg's initial-value snapshot made to fail (as a parameter that cannot be copied would)."""

import os
import runpy

from msdbg.capture import initial


def fail(folder, limit=initial.SNAPSHOT_LIMIT_BYTES):
    raise RuntimeError("planted failure")


initial.snapshot_parameters = fail
runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "dump_sides.py"), run_name="__main__")
