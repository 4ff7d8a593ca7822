"""Text rendering of a comparison: summary, first divergences with their inputs side by side, unpaired nodes."""

from __future__ import annotations

from msdbg.engine.compare import CompareResult, Divergence
from msdbg.engine.pairmetrics import PairMetrics

UNPAIRED_SHOWN = 10
DIVERGENCES_SHOWN = 5


def report_lines(result: CompareResult) -> list[str]:
    """The text report: a summary line, the first divergence of each step, unpaired nodes, notes."""
    out_of = sum(1 for p in result.pairs if p.diverged)
    lines = [f"msdbg compare: {len(result.steps)} step{'s' if len(result.steps) != 1 else ''}, {len(result.pairs)} "
             f"tensor pairs, {out_of} out of tolerance ({result.tolerance.describe()}); unpaired nodes: "
             f"{len(result.unpaired_a)} only in A, {len(result.unpaired_b)} only in B"]
    if not result.divergences:
        lines.append("no divergence: every paired tensor is within tolerance")
    steps_shown = []
    for divergence in result.divergences:
        step = (divergence.pair.a.step.rank, divergence.pair.a.step.graph, divergence.pair.a.step.iteration)
        if step not in steps_shown:
            steps_shown.append(step)
            lines.append(f"first divergence at step {step[2]} (rank {step[0]}, graph {step[1]}):")
        if len(steps_shown) == 1:
            lines.extend("  " + line for line in divergence_lines(divergence))
        else:
            lines.append(f"  {divergence.pair.a.op_type} {divergence.pair.a.node} ({divergence.cause})")
        if len(steps_shown) > DIVERGENCES_SHOWN:
            lines.append(f"  ... more steps in --json ({len(result.divergences)} divergences in all)")
            break
    for side, unpaired in (("A", result.unpaired_a), ("B", result.unpaired_b)):
        if unpaired:
            shown = list(unpaired.values())[:UNPAIRED_SHOWN]
            lines.append(f"only in {side}: " + ", ".join(f"{u['op_type']} {u['node']}" for u in shown)
                         + (f" ... ({len(unpaired)} in all)" if len(unpaired) > UNPAIRED_SHOWN else ""))
    lines.extend(f"note: {note}" for note in result.notes)
    return lines


def divergence_lines(divergence: Divergence) -> list[str]:
    """One divergence in detail: both nodes, source lines, metrics, the inputs side by side, the cause."""
    a, b = divergence.pair.a, divergence.pair.b
    lines = [f"{a.op_type} {a.node} ({a.io} {a.slot}, {a.category})"]
    if (b.node, b.op_type) != (a.node, a.op_type):
        lines.append(f"  B: {b.op_type} {b.node}")
    lines.append(f"  source A: {divergence.source_a or '(unknown)'}")
    if divergence.source_b != divergence.source_a:
        lines.append(f"  source B: {divergence.source_b or '(unknown)'}")
    lines.append(f"  output: {format_metrics(divergence.pair.metrics)}")
    for item in divergence.inputs:
        producer = item.producer_a or "(constant)"
        if item.producer_b != item.producer_a:
            producer += f"  |  B: {item.producer_b or '(constant)'}"
        verdict = format_metrics(item.metrics) if item.metrics is not None else ""
        note = f"  [{item.note}]" if item.note else ""
        lines.append(f"  input {item.slot}: {producer}")
        lines.append(f"    {verdict}{note}".rstrip())
    lines.append(f"  cause: {divergence.cause}" + _cause_text(divergence.cause))
    return lines


def _cause_text(cause: str) -> str:
    if cause == "op":
        return " (its inputs agree, its output does not: this op is where the runs part)"
    if cause.startswith("input"):
        return " (this input already differs coming in)"
    return " (its inputs were not dumped or not placed in the graph)"


def format_metrics(metrics: PairMetrics | None) -> str:
    """``equal`` / ``within`` / ``DIFFERS`` with max abs, max rel and cosine."""
    if metrics is None:
        return "unreadable"
    if metrics.problem:
        return f"DIFFERS: {metrics.problem}"
    verdict = "within tolerance" if metrics.within else "DIFFERS"
    if metrics.max_abs == 0 and not metrics.nonfinite_mismatch:
        verdict = "equal"
    parts = [verdict]
    if metrics.max_abs is not None:
        parts.append(f"max_abs={metrics.max_abs:.4g} max_rel={metrics.max_rel:.4g}"
                     + (f" cosine={metrics.cosine:.8g}" if metrics.cosine is not None else ""))
    if metrics.basis != "values":
        parts.append(f"(by {metrics.basis}: a side holds statistics only)")
    if metrics.nonfinite_a or metrics.nonfinite_b:
        parts.append(f"NaN/Inf: A {metrics.nonfinite_a}, B {metrics.nonfinite_b}, "
                     f"{metrics.nonfinite_mismatch} positions disagree")
    if metrics.dtype_a != metrics.dtype_b:
        parts.append(f"dtype {metrics.dtype_a} vs {metrics.dtype_b}")
    return "  ".join(parts)
