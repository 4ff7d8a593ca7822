"""Open ``.npy`` tensor files lazily and say exactly what is wrong with a bad one."""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass

import numpy as np

from msdbg.errors import MsdbgError


# Tensors up to this size are read into memory: for small files a read is several times cheaper than setting up
# a memory map (most tensors of a step are small), and their pages need no releasing.
SMALL_FILE_BYTES = 1 << 20


class TensorFileError(MsdbgError):
    """A tensor file that cannot be read (missing, truncated, corrupt)."""


@dataclass(frozen=True)
class NpyLayout:
    """Where a ``.npy`` file's values are and what they are."""

    shape: tuple[int, ...]
    fortran: bool
    dtype: np.dtype  # what the bytes are: the header's, except float32 bytes under a float16 header
    offset: int
    header_dtype: np.dtype


def read_header(path: str) -> NpyLayout:
    """Shape, order, dtype and data offset of a ``.npy`` file, checked against its length.

    MindSpore's CPU dump under O2 mixed precision writes some float16 tensors as float32 values under a float16
    header (measured, MindSpore 2.10: header ``<f2``, file name ``Float16``, data twice the header's size); the
    file size tells, and the values are read as float32. Raises TensorFileError with a one-line message naming
    the file.
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
    count = _count(shape)
    expected = offset + count * dtype.itemsize
    if size < expected:
        raise TensorFileError(
            f"tensor file {path}: truncated ({size} bytes, header promises {expected} for shape {shape} {dtype})"
        )
    data_dtype = dtype
    if dtype == np.float16 and count and size - offset == count * 4:
        data_dtype = np.dtype(np.float32).newbyteorder(dtype.byteorder)
    return NpyLayout(tuple(shape), fortran, data_dtype, offset, dtype)


def open_npy(path: str) -> np.ndarray:
    """Memory-map a ``.npy`` file read-only (read small ones) after checking its header and length.

    The dtype is the one its bytes have (see read_header), whatever the file name says. Raises TensorFileError
    with a one-line message naming the file.
    """
    layout = read_header(path)
    shape, dtype, offset, order = layout.shape, layout.dtype, layout.offset, "F" if layout.fortran else "C"
    count = _count(shape)
    if count == 0:
        return np.zeros(shape, dtype=dtype)
    if count * dtype.itemsize <= SMALL_FILE_BYTES:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = np.fromfile(handle, dtype=dtype, count=count)
        data.flags.writeable = False  # read-only, like the memory maps of larger tensors
        return data.reshape(shape, order=order)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order=order)


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


def _count(shape: tuple[int, ...]) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
