"""Run a training script with msdbg's step barrier installed and nothing evaluated (for benchmarks/overhead.py).

    python benchmarks/_barrier_only.py SCRIPT [ARGS...]

After every top-level graph run the barrier synchronises MindSpore's executor, as under ``msdbg run``, and then
calls a no-op instead of evaluating the step. With MINDSPORE_DUMP_CONFIG set, this is "MindSpore's dump, waited
for at every step", without msdbg's own work.
"""

import runpy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from msdbg.capture import barrier  # noqa: E402

barrier.install(lambda: None)
script = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path.insert(0, str(Path(script).resolve().parent))
runpy.run_path(script, run_name="__main__")
