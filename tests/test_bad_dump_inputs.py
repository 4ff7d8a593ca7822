"""Damaged or odd dumps through ``msdbg check``: one stderr line per problem naming the file, the other tensors still
checked (the demo's NaN origin is still found), exit 2; nothing hangs and no traceback."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import run_msdbg

WATCH = ["-c", "watch tensor_overflow", "--nx"]
ORIGIN = "origin: Log Default/Log-op0"


@pytest.fixture
def dump(jit_nan_dump, tmp_path) -> Path:
    """A private copy of a real dump of the nan_log demo (-inf from Log at step 3)."""
    return Path(shutil.copytree(jit_nan_dump, tmp_path / "dump"))


def _step(dump: Path, iteration: int) -> Path:
    return dump / "rank_0" / "Net" / "0" / str(iteration)


def _tensor(dump: Path, iteration: int, prefix: str) -> Path:
    return next(p for p in sorted(_step(dump, iteration).iterdir()) if p.name.startswith(prefix) and ".output." in p.name)


def _check(dump: Path, *extra: str):
    done = run_msdbg("check", str(dump), *WATCH, *extra, timeout=120)
    assert "Traceback" not in done.stderr + done.stdout, done.stderr[-3000:]
    return done


def _errors(done) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("msdbg: error:")]


def _assert_one_error_naming(done, path: Path, *words: str) -> None:
    errors = _errors(done)
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(errors) == 1, errors
    assert str(path) in errors[0] and all(word in errors[0] for word in words), errors[0]
    assert ORIGIN in done.stdout, "the other tensors were still checked"


def _rewrite_header(path: Path, header: bytes) -> None:
    """Replace the .npy header dict, keeping the 64-byte alignment NumPy writes."""
    data = path.read_bytes()
    header_len = int.from_bytes(data[8:10], "little")
    body = data[10 + header_len:]
    padded = header + b" " * ((64 - (10 + len(header) + 1) % 64) % 64) + b"\n"
    path.write_bytes(data[:8] + len(padded).to_bytes(2, "little") + padded + body)


def test_a_paren_in_the_header_padding(dump):
    victim = _tensor(dump, 1, "Square.")
    data = bytearray(victim.read_bytes())
    header_end = 10 + int.from_bytes(data[8:10], "little")
    data[header_end - 3] = ord("(")  # in the spaces NumPy pads the header with
    victim.write_bytes(bytes(data))
    _assert_one_error_naming(_check(dump), victim, "not a valid .npy file")


@pytest.mark.parametrize("descr", ["'<c8'", "'<U1'", "[('a', '<f4')]", "'<M8[s]'"])
def test_a_non_numeric_dtype(dump, descr):
    victim = _tensor(dump, 1, "Square.")
    _rewrite_header(victim, b"{'descr': " + descr.encode() + b", 'fortran_order': False, 'shape': (1,), }")
    _assert_one_error_naming(_check(dump), victim, "is not a tensor dtype msdbg reads")


def test_a_negative_shape(dump):
    victim = _tensor(dump, 1, "Square.")
    _rewrite_header(victim, b"{'descr': '<f4', 'fortran_order': False, 'shape': (-4, -16), }")
    _assert_one_error_naming(_check(dump), victim, "negative dimension")


def test_a_fifo_is_skipped_with_a_line_and_does_not_hang(dump):
    victim = _tensor(dump, 1, "Square.")
    victim.unlink()
    os.mkfifo(victim)
    _assert_one_error_naming(_check(dump), victim, "not a regular file")


@pytest.mark.parametrize("what", ["ir", "execution_order"])
def test_an_unreadable_graph_file(dump, what):
    rank = dump / "rank_0"
    victim = (next((rank / "graphs").glob("*_0.ir")) if what == "ir"
              else rank / "execution_order" / "ms_execution_order_graph_0.csv")
    victim.unlink()
    victim.mkdir()  # reading it fails like an unreadable file (the tests run as root: chmod would not stop it)
    done = _check(dump)
    errors = _errors(done)
    assert done.returncode == 2 and len(errors) == 1 and str(victim) in errors[0], done.stderr[-2000:]
    assert "origin: Log" in done.stdout


def test_an_unreadable_step_folder(dump):
    victim = _step(dump, 1)
    shutil.rmtree(victim)
    victim.write_text("not a folder")  # a file where a step folder belongs is not a step
    done = _check(dump)
    assert done.returncode == 1 and ORIGIN in done.stdout, done.stderr[-2000:]


def test_a_step_folder_named_with_a_unicode_digit_is_not_a_step(dump):
    shutil.copytree(_step(dump, 1), _step(dump, 1).parent / "³")
    shutil.copytree(_step(dump, 1), _step(dump, 1).parent / "٣")
    done = _check(dump)
    assert done.returncode == 1 and ORIGIN in done.stdout and "6 steps" in done.stdout, done.stdout[-2000:]


def test_a_weight_whose_shape_changes_between_steps(dump):
    victim = _tensor(dump, 2, "Parameter.fc1_weight.")
    np.save(victim.with_suffix(""), np.zeros((3, 3), np.float32))  # np.save adds the .npy again
    done = _check(dump, "-c", "watch weight_not_changed")
    assert done.returncode == 1 and ORIGIN in done.stdout, done.stderr[-2000:]
    assert "changed shape from (16, 4) to (3, 3)" in done.stderr or "changed shape" in done.stderr, done.stderr


def test_five_bad_files_are_five_lines(dump):
    victims = [p for p in sorted(_step(dump, 2).iterdir()) if ".output." in p.name][:5]
    for victim in victims:
        victim.write_bytes(b"\x93NUMPY garbage")
    done = _check(dump)
    errors = _errors(done)
    assert done.returncode == 2 and ORIGIN in done.stdout
    assert sorted(errors) == sorted(e for e in errors if any(str(v) in e for v in victims)) and len(errors) == 5


def test_a_statistic_csv_beside_tensor_files_is_not_counted_twice(dump):
    plain = _check(dump)
    (_step(dump, 3) / "statistic.csv").write_text("Op Type,Op Name,Task ID,Stream ID,Timestamp,IO,Slot,Data Size,"
                                                  "Data Type,Shape,Max Value,Min Value\nLog,Default/Log-op0,0,0,1,"
                                                  "output,0,256,float32,\"(16,4)\",1,-inf\n")
    again = _check(dump)
    assert again.returncode == plain.returncode == 1
    def report(done) -> list[str]:
        return [line for line in done.stdout.splitlines() if not line.startswith("msdbg: flight recording")]

    assert report(again) == report(plain)


def test_a_bad_statistic_csv_in_a_statistics_only_step_is_one_line(dump):
    step = _step(dump, 1)
    shutil.rmtree(step)
    step.mkdir()
    (step / "statistic.csv").write_text("Op Type,Op Name\nbroken")
    done = _check(dump)
    errors = _errors(done)
    assert done.returncode == 2 and len(errors) == 1 and str(step / "statistic.csv") in errors[0], done.stderr
    assert ORIGIN in done.stdout


def test_command_files_with_a_bom_a_self_source_and_dev_zero(dump, tmp_path):
    bom = tmp_path / "bom.msdbg"
    bom.write_bytes(b"\xef\xbb\xbfwatch tensor_overflow\n")
    done = run_msdbg("check", str(dump), "--nx", "-x", str(bom), timeout=120)
    assert done.returncode == 1 and ORIGIN in done.stdout, done.stderr
    loop = tmp_path / "loop.msdbg"
    loop.write_text(f"source {loop}\n")
    done = run_msdbg("check", str(dump), "--nx", "-x", str(loop), timeout=120)
    assert done.returncode == 2 and "already being sourced" in done.stderr and "Traceback" not in done.stderr
    done = run_msdbg("check", str(dump), "--nx", "-x", "/dev/zero", timeout=60)
    assert done.returncode == 2 and done.stderr.strip() == "msdbg: error: command file /dev/zero: not a regular file"


def test_check_without_watchpoints_says_so(dump):
    done = run_msdbg("check", str(dump), "--nx", timeout=60)
    assert done.returncode == 2 and done.stderr.strip().startswith("msdbg: error: no watchpoints"), done.stderr
