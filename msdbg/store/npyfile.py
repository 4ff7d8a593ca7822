"""Open ``.npy`` tensor files lazily and say exactly what is wrong with a bad one."""

from __future__ import annotations

import os

import numpy as np

from msdbg.errors import MsdbgError


class TensorFileError(MsdbgError):
    """A tensor file that cannot be read (missing, truncated, corrupt)."""


def open_npy(path: str) -> np.ndarray:
    """Memory-map a ``.npy`` file read-only after checking its header and length.

    Raises TensorFileError with a one-line message naming the file.
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
            offset = handle.tell()
    except FileNotFoundError:
        raise TensorFileError(f"tensor file {path}: does not exist") from None
    except (ValueError, OSError, SyntaxError, EOFError) as exc:
        raise TensorFileError(f"tensor file {path}: not a valid .npy file ({_short(exc)})") from None
    if dtype.hasobject:
        raise TensorFileError(f"tensor file {path}: holds Python objects, not numbers")
    count = 1
    for dim in shape:
        count *= dim
    expected = offset + count * dtype.itemsize
    if size < expected:
        raise TensorFileError(
            f"tensor file {path}: truncated ({size} bytes, header promises {expected} for shape {shape} {dtype})"
        )
    if count == 0:
        return np.zeros(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
