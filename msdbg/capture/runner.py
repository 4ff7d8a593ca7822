"""Run an unmodified training script as ``__main__``, keeping its traceback and exit code."""

from __future__ import annotations

import os
import runpy
import sys
import traceback

from msdbg.control import StopTraining


def run_script(path: str, args: list[str]) -> int:
    """Run ``path`` with ``sys.argv = [path, *args]``; return its exit code (1 after an uncaught exception)."""
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [path, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        runpy.run_path(path, run_name="__main__")
        return 0
    except SystemExit as exc:
        return _exit_code(exc.code)
    except StopTraining:
        print("msdbg: training stopped at a step boundary", file=sys.stderr)
        return 0
    except KeyboardInterrupt:
        print("msdbg: training interrupted", file=sys.stderr)
        return 130
    except BaseException as exc:  # the script's own failure: show it as Python would
        _print_script_traceback(exc, path)
        return 1
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _print_script_traceback(exc: BaseException, path: str) -> None:
    """Print the traceback from the script's first frame on, hiding msdbg's and runpy's frames."""
    frames = traceback.extract_tb(exc.__traceback__)
    script = os.path.abspath(path)
    start = next((i for i, f in enumerate(frames) if os.path.abspath(f.filename) == script), 0)
    print("Traceback (most recent call last):", file=sys.stderr)
    print("".join(traceback.format_list(frames[start:])), end="", file=sys.stderr)
    print("".join(traceback.format_exception_only(type(exc), exc)), end="", file=sys.stderr)
