"""Open ``.npy`` tensor files lazily and say exactly what is wrong with a bad one."""

from __future__ import annotations

import io
import mmap
import os
import stat
from dataclasses import dataclass

import numpy as np

from msdbg.errors import MsdbgError


# Tensors up to this size are read into memory: for small files a read is several times cheaper than setting up
# a memory map (most tensors of a step are small), and their pages need no releasing.
SMALL_FILE_BYTES = 1 << 20
# Bytes read first from a large file: its header (NumPy pads headers to 64 bytes; MindSpore's are under 256).
_HEADER_READ = 4096
_HEADERS: dict[bytes, tuple[tuple[int, ...], bool, np.dtype, int]] = {}
_HEADERS_KEPT = 4096
_LAYOUTS: dict[tuple[bytes, int], NpyLayout] = {}  # by (header, file size): layout_from_header's
# What msdbg computes statistics on: bool, signed and unsigned integers, floats (bfloat16 arrives as raw bits in
# an integer or void type of 2 bytes; the file name says so and stats decodes it).
_NUMERIC_KINDS = set("biuf")


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
    return _read(path)[0]


def open_npy(path: str) -> np.ndarray:
    """Memory-map a ``.npy`` file read-only (read small ones) after checking its header and length.

    The dtype is the one its bytes have (see read_header), whatever the file name says. A small file is read with
    one system call, and each distinct header is parsed once (a step's files repeat the same few headers). Raises
    TensorFileError with a one-line message naming the file.
    """
    return read_npy(path)[1]


def read_npy(path: str) -> tuple[NpyLayout, np.ndarray]:
    """open_npy's array with the file's layout (read_header's), from the same read."""
    layout, data = _read(path)
    shape, dtype, offset, order = layout.shape, layout.dtype, layout.offset, "F" if layout.fortran else "C"
    count = _count(shape)
    if count == 0:
        return layout, np.zeros(shape, dtype=dtype)
    if count * dtype.itemsize <= SMALL_FILE_BYTES:
        if len(data) < offset + count * dtype.itemsize:  # only the header was read, or the file grew since
            with open(path, "rb") as handle:
                data = handle.read(offset + count * dtype.itemsize)
        # read-only (a view of bytes), like the memory maps of larger tensors
        return layout, np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(shape, order=order)
    return layout, np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order=order)


def _read(path: str) -> tuple[NpyLayout, bytes]:
    """The layout of a ``.npy`` file and its first bytes (all of a small file), in one read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # O_NONBLOCK: opening a FIFO must not wait for a writer
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):  # a FIFO or device would block the read, or never end
                raise TensorFileError(f"tensor file {path}: not a regular file; skipped")
            size = info.st_size
            data = os.read(fd, size if size <= SMALL_FILE_BYTES + _HEADER_READ else _HEADER_READ)
        finally:
            os.close(fd)
    except FileNotFoundError:
        raise TensorFileError(f"tensor file {path}: does not exist") from None
    except OSError as exc:
        raise TensorFileError(f"tensor file {path}: {exc.strerror}") from None
    return _layout(path, data, size), data


def layout_from_header(path: str, header: bytes, size: int) -> NpyLayout:
    """read_header's layout of a ``.npy`` file of ``size`` bytes whose header (its bytes up to the data) was read
    elsewhere (the compiled kernel's batch read); kept per header and size, as a step's files repeat a few. Raises
    TensorFileError naming the file."""
    known = _LAYOUTS.get((header, size))
    if known is None:
        known = _layout(path, header, size)
        if len(_LAYOUTS) >= _HEADERS_KEPT:
            _LAYOUTS.clear()
        _LAYOUTS[(header, size)] = known
    return known


def _layout(path: str, data: bytes, size: int) -> NpyLayout:
    """The layout of a ``.npy`` file of ``size`` bytes that starts with ``data`` (at least its header)."""
    shape, fortran, dtype, offset = _header(path, data)
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


def _header(path: str, data: bytes) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran order, dtype, data offset) of a .npy file starting with ``data``; parsed by NumPy's own
    reader the first time a header is seen."""
    if data[:6] == b"\x93NUMPY" and len(data) >= 10:
        length = int.from_bytes(data[8:10], "little") + 10 if data[6] == 1 else (
            int.from_bytes(data[8:12], "little") + 12 if len(data) >= 12 else 0)
        known = _HEADERS.get(data[:length]) if 10 <= length <= len(data) else None
        if known is not None:
            return known
    parsed = _parse_header(path, io.BytesIO(data))
    if len(_HEADERS) >= _HEADERS_KEPT:
        _HEADERS.clear()
    _HEADERS[data[:parsed[3]]] = parsed
    return parsed


def _parse_header(path: str, handle: io.BytesIO) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    try:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
    except Exception as exc:  # NumPy's header parser raises ValueError, SyntaxError, tokenize.TokenError, ...
        raise TensorFileError(f"tensor file {path}: not a valid .npy file ({_short(exc)})") from None
    if dtype.hasobject:
        raise TensorFileError(f"tensor file {path}: holds Python objects, not numbers")
    if dtype.kind not in _NUMERIC_KINDS and not (dtype.kind == "V" and dtype.itemsize == 2 and not dtype.names):
        raise TensorFileError(f"tensor file {path}: dtype {dtype} is not a tensor dtype msdbg reads "
                              "(bool, integer or floating point)")
    if any(dim < 0 for dim in shape):
        raise TensorFileError(f"tensor file {path}: negative dimension in shape {tuple(shape)}")
    return tuple(shape), bool(fortran), dtype, handle.tell()


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
