"""Plain-text rendering of hits and of a run's summary."""

from __future__ import annotations

from collections import defaultdict

from msdbg.engine.hits import Hit

_SHOWN_STATS = ("nan", "pos_inf", "neg_inf", "min", "max", "mean", "abs_mean", "size", "max_abs_diff",
                "reference_rank", "unchanged_steps", "scale", "skipped", "steps")


def format_stats(stats: dict) -> str:
    return " ".join(f"{k}={_short(stats[k])}" for k in _SHOWN_STATS if k in stats)


def _short(value: object) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def format_hit(hit: Hit) -> str:
    """One line: watchpoint, condition, step, op type, node, tensor, category and parameter."""
    entry = hit.entry
    param = f" param={entry.param}" if entry.param else ""
    origin = "  <- origin" if hit.first_offending else ""
    return (f"wp {hit.watchpoint} {hit.condition} {_step_name(hit)} rank {entry.step.rank} "
            f"{entry.step.place}: {entry.op_type} {entry.node} {entry.io} {entry.slot} "
            f"[{entry.category}{param}]{origin}")


def format_origin(hit: Hit) -> list[str]:
    """The origin of a hit group, with its source line, statistics and reasons."""
    entry = hit.entry
    lines = [f"  origin: {entry.op_type} {entry.node} ({entry.io} {entry.slot}, {entry.category}"
             + (f", param {entry.param}" if entry.param else "") + ")"]
    if entry.unplaced:
        lines.append("    not placed in the graph (no graph node is known to have written it): it ran first of the "
                     "hits, and its ancestors are unknown")
    lines.append(f"    source: {hit.source}" if hit.source else "    source: unknown (no source trace in the graph)")
    lines.extend(f"    {reason}" for reason in hit.reasons)
    lines.append(f"    stats: {format_stats(hit.stats)}")
    return lines


def summary(hits: list[Hit]) -> list[str]:
    """Hits grouped by (rank, graph, step) and watchpoint, each group with its origin."""
    groups: dict[tuple, list[Hit]] = defaultdict(list)
    for hit in hits:
        key = hit.entry.step
        groups[(key.rank, key.net, key.iteration, hit.phase, hit.step, key.graph, hit.watchpoint)].append(hit)
    since = _first_nonfinite(hits)
    first_origins: dict[tuple, Hit] = {}
    lines = []
    for (rank, net, _, _, step, graph, number), group in sorted(groups.items()):
        condition = group[0].condition
        lines.append(f"{_step_name(group[0])} (rank {rank}, {group[0].entry.step.place}): watchpoint {number} "
                     f"{condition}: {len(group)} tensor{'s' if len(group) != 1 else ''}")
        origin = next((h for h in group if h.first_offending), group[0])
        lines.extend(format_origin(origin))
        unplaced = [h for h in group if h.entry.unplaced and h is not origin]
        if unplaced:
            lines.append(f"    {len(unplaced)} of these tensors could not be placed in the graph (e.g. "
                         f"{unplaced[0].entry.op_type} {unplaced[0].entry.node}): ordered by dump time only")
        if origin.nonfinite:
            first = first_origins.setdefault((rank, net, graph, number), origin)
            earlier = since[(rank, net, graph, number, origin.entry.label)]
            if earlier < step:
                where = "" if first.entry.label == origin.entry.label else (
                    f": NaN/Inf first appeared at step {first.step} in {first.entry.op_type} "
                    f"{first.entry.node}")
                lines.append(f"    already non-finite since step {earlier}{where}")
    return lines


def _first_nonfinite(hits: list[Hit]) -> dict[tuple, int]:
    """For each (rank, net, graph, watchpoint, tensor): the first step its hit held NaN/Inf."""
    first: dict[tuple, int] = {}
    for hit in hits:
        if hit.nonfinite:
            step = hit.entry.step
            key = (step.rank, step.net, step.graph, hit.watchpoint, hit.entry.label)
            first[key] = min(first.get(key, hit.step), hit.step)
    return first


def _step_name(hit: Hit) -> str:
    return f"step {hit.step}" if hit.phase == "train" else f"eval step {hit.step}"
