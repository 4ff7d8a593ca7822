"""slow_loop.py's training, in a script that calls msdbg.enable() itself (no msdbg run). argv[1]: steps."""

import os
import runpy

import msdbg

msdbg.enable()
runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "slow_loop.py"), run_name="__main__")
