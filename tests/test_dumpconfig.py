"""The dump configuration msdbg writes: tensors on CPU and at the prompt, statistics on GPU/Ascend when enough.

GPU and Ascend cannot run here, so these tests check the configuration msdbg would hand MindSpore there.
"""

import json

import pytest

from msdbg.capture.dumpconfig import (ENV_VAR, STATISTIC_CATEGORIES, choose_saved_data, dump_config,
                                      install_dump_config)
from msdbg.engine.watchpoints import WatchpointList


def _watchpoints(*specs):
    items = WatchpointList()
    for name, params in specs:
        items.add(name, params, None)
    return items.active()


STATISTIC_ONLY = _watchpoints(("tensor_overflow", {}), ("gradient_too_large", {"max_gt": "10"}),
                              ("tensor_all_zero", {}), ("weight_initialization", {}),
                              ("tensor_health", {"nan_count_gt": "0"}), ("tensor_turbulence", {}))


@pytest.mark.parametrize("device", ["GPU", "Ascend"])
def test_statistic_when_every_watchpoint_is_decidable_from_columns(device):
    assert choose_saved_data(device, STATISTIC_ONLY, interactive=False) == "statistic"


@pytest.mark.parametrize("needs_tensor", [
    ("weight_not_changed", {}), ("weight_change_too_large", {}), ("gradient_vanishing", {"abs_mean_lt": "1e-9"}),
    ("tensor_range", {"range_start_inclusive": "0", "range_end_inclusive": "1", "range_percentage_lt": "5"}),
])
def test_tensor_when_one_watchpoint_needs_values(needs_tensor):
    watchpoints = STATISTIC_ONLY + _watchpoints(needs_tensor)
    assert choose_saved_data("GPU", watchpoints, interactive=False) == "tensor"


def test_tensor_on_cpu_at_the_prompt_and_without_watchpoints():
    assert choose_saved_data("CPU", STATISTIC_ONLY, interactive=False) == "tensor"
    assert choose_saved_data("Ascend", STATISTIC_ONLY, interactive=True) == "tensor"
    assert choose_saved_data("GPU", [], interactive=False) == "tensor"


def test_written_config(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    path = install_dump_config(dump_config(str(tmp_path / "dump"), saved_data="statistic"), str(tmp_path))
    written = json.loads(open(path).read())
    settings = written["common_dump_settings"]
    assert settings["saved_data"] == "statistic"
    assert settings["statistic_category"] == list(STATISTIC_CATEGORIES)
    assert settings["path"] == str(tmp_path / "dump") and settings["iteration"] == "all"
    assert written["e2e_dump_settings"]["enable"] is True
    import os
    assert os.environ[ENV_VAR] == path
    tensor = dump_config(str(tmp_path / "dump"))["common_dump_settings"]
    assert tensor["saved_data"] == "tensor" and "statistic_category" not in tensor and tensor["input_output"] == 0
