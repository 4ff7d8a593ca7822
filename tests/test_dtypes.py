"""Each tensor is read with the dtype its bytes have; the file name's dtype is only cross-checked."""

import numpy as np
import pytest

from conftest import SCRIPTS, run_msdbg
from msdbg.engine.evaluate import evaluate_step
from msdbg.engine.history import History
from msdbg.engine.watchpoints import WatchpointList
from msdbg.store.dumpdir import DumpDir
from msdbg.store.npyfile import open_npy


def _npy_with_header(path, header_dtype: str, values: np.ndarray) -> None:
    """A .npy file whose header says ``header_dtype`` while its data are ``values``' bytes."""
    header = {"descr": header_dtype, "fortran_order": False, "shape": values.shape}
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        handle.write(values.tobytes())


def _step_dir(tmp_path):
    folder = tmp_path / "dump" / "rank_0" / "Net" / "0" / "0"
    folder.mkdir(parents=True)
    return folder


def test_float32_bytes_under_a_float16_header_read_as_float32(tmp_path):
    """MindSpore 2.10 CPU under O2: header '<f2', name Float16, data twice the size (float32 values)."""
    values = np.array([[1.5, -2.25], [3e5, 1e-3]], np.float32)  # 3e5 is +inf in float16
    path = tmp_path / "Conv2D.Default_Conv2D-op0.0.0.1.output.0.DefaultFormat.Float16.npy"
    _npy_with_header(path, "<f2", values)
    loaded = open_npy(str(path))
    assert loaded.dtype == np.float32 and np.array_equal(loaded, values)


def _evaluate(tmp_path, name: str, header: str, values: np.ndarray):
    _npy_with_header(_step_dir(tmp_path) / name, header, values)
    store = DumpDir(str(tmp_path / "dump"))
    entries = store.tensors(store.steps()[0])
    return evaluate_step(entries, [WatchpointList().add("tensor_overflow", {}, None)], None, History())


def test_the_known_o2_case_is_silent_and_finite(tmp_path):
    result = _evaluate(tmp_path, "Conv2D.Default_Conv2D-op0.0.0.1.output.0.DefaultFormat.Float16.npy", "<f2",
                       np.full((4,), 3e5, np.float32))
    assert result.tensors_checked == 1 and not result.hits and not result.notes and not result.errors


def test_a_real_disagreement_is_one_note_naming_the_file(tmp_path):
    """Named Float32, but header and size say int32: read as int32 (not checked for NaN) and said once."""
    name = "Add.Default_Add-op0.0.0.1.output.0.DefaultFormat.Float32.npy"
    result = _evaluate(tmp_path, name, "<i4", np.arange(4, dtype=np.int32))
    assert len(result.notes) == 1 and name in result.notes[0] and "int32" in result.notes[0]
    assert not result.hits and not result.errors and result.tensors_checked == 0


@pytest.mark.slow
@pytest.mark.parametrize("style", ["jit", "model"])
def test_o2_mixed_precision_healthy_run_has_no_hit_and_no_note(tmp_path, style):
    """ms.amp.auto_mixed_precision(net, "O2"): before, ~190 NaN/Inf tensors per step were reported."""
    done = run_msdbg("run", "--batch", "--nx", "-c", "watch tensor_overflow", "-c", "watch recommended",
                     str(SCRIPTS / "amp_o2.py"), style)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "msdbg: 0 hits in 3 steps" in done.stdout
    assert "note:" not in done.stderr and "warning" not in done.stderr
