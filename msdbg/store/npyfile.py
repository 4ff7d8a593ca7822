"""Open ``.npy`` tensor files lazily and say exactly what is wrong with a bad one."""

from __future__ import annotations

import mmap
import os
import stat

import numpy as np

from msdbg.errors import MsdbgError


# Tensors up to this size are read into memory: for small files a read is several times cheaper than setting up
# a memory map (most tensors of a step are small), and their pages need no releasing.
SMALL_FILE_BYTES = 1 << 20
# What msdbg computes statistics on: bool, signed and unsigned integers, floats (bfloat16 arrives as raw bits in
# an integer or void type of 2 bytes; the file name says so and stats decodes it).
_NUMERIC_KINDS = set("biuf")


class TensorFileError(MsdbgError):
    """A tensor file that cannot be read (missing, truncated, corrupt)."""


def open_npy(path: str) -> np.ndarray:
    """Memory-map a ``.npy`` file read-only (read small ones) after checking its header and length.

    Raises TensorFileError with a one-line message naming the file.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise TensorFileError(f"tensor file {path}: does not exist") from None
    except OSError as exc:
        raise TensorFileError(f"tensor file {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):  # a FIFO would block the read forever
        raise TensorFileError(f"tensor file {path}: not a regular file; skipped")
    size = info.st_size
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
            offset = handle.tell()
    except FileNotFoundError:
        raise TensorFileError(f"tensor file {path}: does not exist") from None
    except Exception as exc:  # NumPy's header parser raises ValueError, SyntaxError, tokenize.TokenError, ...
        raise TensorFileError(f"tensor file {path}: not a valid .npy file ({_short(exc)})") from None
    if dtype.hasobject:
        raise TensorFileError(f"tensor file {path}: holds Python objects, not numbers")
    if dtype.kind not in _NUMERIC_KINDS and not (dtype.kind == "V" and dtype.itemsize == 2 and not dtype.names):
        raise TensorFileError(f"tensor file {path}: dtype {dtype} is not a tensor dtype msdbg reads "
                              "(bool, integer or floating point)")
    if any(dim < 0 for dim in shape):
        raise TensorFileError(f"tensor file {path}: negative dimension in shape {shape}")
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
    if count * dtype.itemsize <= SMALL_FILE_BYTES:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = np.fromfile(handle, dtype=dtype, count=count)
        data.flags.writeable = False  # read-only, like the memory maps of larger tensors
        return data.reshape(shape, order="F" if fortran else "C")
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


def release_pages(array: np.ndarray) -> None:
    """Drop the pages of a read-only memory map under ``array`` from this process's resident memory.

    The kernel keeps them in its page cache, and touching them again maps them back, so this changes no value;
    it keeps a scan of a tensor larger than memory from holding the whole file resident. Arrays not backed by a
    memory map are left alone.
    """
    backing = array
    while backing is not None and not isinstance(backing, mmap.mmap):
        backing = getattr(backing, "base", None)
    if backing is None or not hasattr(backing, "madvise") or backing.closed or not array.nbytes:
        return
    start = array.__array_interface__["data"][0] - np.frombuffer(backing, np.uint8).ctypes.data
    first = start - start % mmap.PAGESIZE
    backing.madvise(mmap.MADV_DONTNEED, first, start + array.nbytes - first)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
