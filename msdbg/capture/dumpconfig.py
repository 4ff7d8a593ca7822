"""Write the MindSpore dump configuration msdbg needs and point ``MINDSPORE_DUMP_CONFIG`` at it."""

from __future__ import annotations

import json
import os
from typing import Any

from msdbg.engine.watchpoints import Watchpoint

NET_NAME = "Net"
ENV_VAR = "MINDSPORE_DUMP_CONFIG"
# ``input_output``: both sides of every kernel, or outputs only (batch mode on a dump msdbg owns: about half the
# files, and MindSpore's dump writing is most of the overhead; benchmarks/overhead.py).
DUMP_BOTH, DUMP_OUTPUTS = 0, 2


#: ``statistic_category`` names (MindSpore dump docs) and the raw statistics (engine.stats) they give.
STATISTIC_CATEGORIES = ("max", "min", "avg", "count", "negative zero count", "positive zero count", "nan count",
                        "negative inf count", "positive inf count", "zero count", "l2norm")
STATISTIC_STATS = frozenset({"nonfinite", "nan", "pos_inf", "neg_inf", "zero", "neg", "pos", "min", "max", "sum",
                             "sq_sum", "finite_count"})


def decidable_from_statistics(watchpoint: Watchpoint) -> bool:
    """Whether MindSpore's statistic dump (no tensor data) is enough to evaluate this watchpoint."""
    condition = watchpoint.condition
    if condition.needs_previous or condition.needs_range or condition.labels:
        return False
    return condition.stat_needs(watchpoint.params) <= STATISTIC_STATS


def choose_saved_data(device_target: str, watchpoints: list[Watchpoint], interactive: bool) -> str:
    """``statistic`` on GPU/Ascend in batch mode when every watchpoint can be decided from the statistic
    columns (far less disk and time); ``tensor`` otherwise: on CPU (MindSpore refuses ``statistic`` there),
    at the prompt (``print`` needs values) and when a watchpoint needs tensor data."""
    if device_target == "CPU" or interactive or not watchpoints:
        return "tensor"
    return "statistic" if all(decidable_from_statistics(w) for w in watchpoints) else "tensor"


def dump_config(dump_root: str, *, saved_data: str = "tensor", input_output: int = DUMP_BOTH,
                kernels: list[str] | None = None) -> dict[str, Any]:
    """A synchronous (e2e) dump of every iteration.

    On CPU ``saved_data`` must be ``tensor`` (``statistic`` is GPU/Ascend only) and
    ``e2e_dump_settings.enable`` must be true. ``input_output``: 0 both, 1 inputs, 2 outputs.
    """
    statistics = {"statistic_category": list(STATISTIC_CATEGORIES)} if saved_data == "statistic" else {}
    return {
        "common_dump_settings": {
            "dump_mode": 1 if kernels else 0,
            "path": os.path.abspath(dump_root),
            "net_name": NET_NAME,
            "iteration": "all",
            "saved_data": saved_data,
            "input_output": input_output,
            "kernels": list(kernels or []),
            "support_device": [0, 1, 2, 3, 4, 5, 6, 7],
            **statistics,
        },
        "e2e_dump_settings": {"enable": True, "trans_flag": True},
    }


def install_dump_config(config: dict[str, Any], config_dir: str) -> str:
    """Write ``config`` to ``config_dir/dump_config.json`` and set the environment variable; return the path.

    Must run before the training compiles its first graph.
    """
    path = os.path.join(config_dir, "dump_config.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(config, handle, indent=2)
    os.environ[ENV_VAR] = path
    return path
