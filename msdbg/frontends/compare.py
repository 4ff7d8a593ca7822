"""``msdbg compare A B``: text report, ``--json`` and the exit code (2 bad input, 1 diverged, 0 within tolerance)."""

from __future__ import annotations

import json
import sys

from msdbg.engine.compare import compare_runs
from msdbg.engine.pairmetrics import Tolerance
from msdbg.errors import UsageError
from msdbg.frontends.batch import EXIT_BAD_INPUT, EXIT_CLEAN, EXIT_HITS, with_progress
from msdbg.frontends.compare_report import report_lines
from msdbg.store.dumpdir import DumpDir
from msdbg.store.stepspec import parse_step_spec


def compare_command(path_a: str, path_b: str, *, steps: str = "all", rank: int | None = None,
                    tolerance: Tolerance = Tolerance(), json_out: str | None = None) -> int:
    """Compare two dump trees, print the report, write JSON; return the exit code."""
    spec = parse_step_spec(steps)
    dump_a, dump_b = DumpDir(path_a), DumpDir(path_b)
    for name, dump in (("A", dump_a), ("B", dump_b)):
        if not dump.steps():
            raise UsageError(f"run {name} {dump.root}: holds no rank_N/NET/GRAPH/ITERATION folders")
    result = compare_runs(dump_a, dump_b, tolerance, rank=rank, steps=spec,
                          progress=lambda keys: with_progress(keys, "comparing"))
    if not result.steps:
        raise UsageError(f"--steps {steps}: no step of {path_a} pairs with one of {path_b}")
    print("\n".join(report_lines(result)))
    if json_out:
        try:
            with open(json_out, "w", encoding="utf-8") as handle:
                json.dump(result.to_json(), handle, indent=1)
        except OSError as exc:
            raise UsageError(f"--json {json_out}: {exc.strerror}") from None
    for error in result.errors:
        print(f"msdbg: error: {error}", file=sys.stderr)
    if result.errors:
        return EXIT_BAD_INPUT
    return EXIT_HITS if result.divergences else EXIT_CLEAN
