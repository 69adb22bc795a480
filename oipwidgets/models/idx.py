"""Read and write the IDX file format (the format MNIST and Fashion-MNIST ship in).

An IDX file is a 4-byte header ``00 00 <type code> <ndim>``, then ``ndim``
big-endian uint32 dimension sizes, then the array data in big-endian C order.
Files are often gzip-compressed; ``read_idx`` detects that from the content
(gzip magic bytes ``1f 8b``), not from the file name.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path
from typing import Union

import numpy as np

__all__ = [
    "IDXError",
    "IDX_TYPE_CODES",
    "encode_idx",
    "parse_idx",
    "read_idx",
    "write_idx",
]

PathLike = Union[str, "os.PathLike[str]"]

#: IDX type code -> big-endian numpy dtype of the stored data.
IDX_TYPE_CODES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"
_MAX_DIM = 2**32 - 1


class IDXError(ValueError):
    """A file is not a valid IDX file (bad header, wrong size, corrupt gzip...)."""


def _valid_codes_text() -> str:
    """Human-readable list of the supported type codes, for error messages."""
    return ", ".join(
        f"0x{code:02X} ({dt.newbyteorder('=').name})" for code, dt in IDX_TYPE_CODES.items()
    )


def _hex(data: bytes) -> str:
    """Bytes as ``'00 00 08 03'`` for error messages."""
    return " ".join(f"{b:02x}" for b in data)


def _header(data: bytes, name: str, available: int) -> tuple[np.dtype, tuple[int, ...], int]:
    """Check the header at the start of ``data``; returns (stored dtype, shape, header length). ``available`` is
    how many bytes there are in all (for the messages)."""
    if len(data) < 4:
        raise IDXError(
            f"{name}: truncated header: {available} bytes, an IDX header needs at "
            f"least 4 (00 00 <type code> <ndim>)"
        )
    if data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPE_CODES:
        raise IDXError(
            f"{name}: bad IDX magic: first bytes are {_hex(data[:4])}, expected "
            f"00 00 <type code> <ndim> with type code one of {_valid_codes_text()}"
        )
    ndim = data[3]
    if ndim == 0:
        raise IDXError(f"{name}: IDX header declares 0 dimensions; need at least 1")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise IDXError(
            f"{name}: truncated header: {ndim} dimensions need {header_len} header "
            f"bytes, found {available}"
        )
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    return IDX_TYPE_CODES[data[2]], shape, header_len


def _check_size(name: str, dtype: np.dtype, shape: tuple, found: int, extra: str = "") -> int:
    """The number of data bytes the header declares; IDXError when ``found`` bytes differ from it."""
    expected = math.prod(shape) * dtype.itemsize
    what = f"(shape {shape} of {dtype.newbyteorder('=').name})"
    if found < expected:
        raise IDXError(f"{name}: truncated data: expected {expected} bytes after the header {what}, found {found}")
    if found > expected:
        raise IDXError(
            f"{name}: {extra}{found - expected} trailing extra bytes: expected {expected} "
            f"bytes after the header {what}, found {extra}{found}"
        )
    return expected


def _to_array(data, dtype: np.dtype, shape: tuple, offset: int = 0) -> np.ndarray:
    flat = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=offset)
    # astype copies, so the result is writable and in native byte order.
    return flat.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode uncompressed IDX bytes into an array.

    Returns an array with the shape from the header and the native-byte-order
    version of the stored dtype (uint8, int8, int16, int32, float32, float64).
    ``name`` is only used in error messages (normally the file path).
    """
    dtype, shape, header_len = _header(data[:1024], name, len(data))
    _check_size(name, dtype, shape, len(data) - header_len)
    return _to_array(data, dtype, shape, header_len)


_CHUNK = 1 << 20  # bytes read at a time
_TRAILING_LIMIT = 64 << 20  # trailing bytes counted at most (a larger excess is reported as "more than")


def _read_up_to(stream, n: int) -> bytearray:
    """Up to ``n`` bytes from ``stream`` in chunks (fewer at its end): memory grows only with what is there."""
    out = bytearray()
    while len(out) < n:
        chunk = stream.read(min(_CHUNK, n - len(out)))
        if not chunk:
            break
        out += chunk
    return out


def _read_stream(stream, name: str) -> np.ndarray:
    head = _read_up_to(stream, 4)
    if len(head) == 4:
        head += _read_up_to(stream, 4 * head[3])
    dtype, shape, header_len = _header(head, name, len(head))
    expected = math.prod(shape) * dtype.itemsize
    data = _read_up_to(stream, expected)  # never more than the header declares
    if len(data) < expected:
        _check_size(name, dtype, shape, len(data))
    extra = len(_read_up_to(stream, _TRAILING_LIMIT))
    if extra:
        more = "more than " if extra == _TRAILING_LIMIT and stream.read(1) else ""
        _check_size(name, dtype, shape, expected + extra, more)
    return _to_array(data, dtype, shape)


def read_idx(path: PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a native-byte-order array.

    Gzip is detected by the magic bytes ``1f 8b``, so ``.gz`` files without the
    suffix (and vice versa) work. The file is read as a stream: the header is
    checked first and no more data is read than it declares (plus a bounded look
    for trailing bytes), so a small corrupt or hostile file cannot make a large
    allocation. Raises ``FileNotFoundError`` if ``path`` does not exist and
    ``IDXError`` (naming ``path``) for any malformed content.
    """
    name = os.fspath(path)
    if os.path.isdir(name):
        raise IDXError(f"{name} is a directory, not an IDX file (give a file such as train-images-idx3-ubyte.gz)")
    with open(path, "rb") as raw:
        gz = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        if not gz:
            return _read_stream(raw, name)
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                return _read_stream(stream, name)
        except (OSError, EOFError, zlib.error) as exc:
            raise IDXError(
                f"{name}: corrupt gzip stream (file starts with gzip magic 1f 8b but "
                f"cannot be decompressed: {exc})"
            ) from exc


def _idx_type_code(dtype: np.dtype, name: str) -> int:
    """The IDX type code for ``dtype``; IDXError if IDX cannot store it."""
    for code, idx_dtype in IDX_TYPE_CODES.items():
        if dtype.newbyteorder("=") == idx_dtype.newbyteorder("="):
            return code
    raise IDXError(
        f"{name}: dtype {dtype} cannot be stored in IDX; valid dtypes: "
        f"{_valid_codes_text()}"
    )


def encode_idx(array: np.ndarray, name: str = "<bytes>") -> bytes:
    """Encode an array (1 to 255 dims, an IDX dtype) as uncompressed IDX bytes.

    ``name`` is only used in error messages (normally the destination path).
    """
    arr = np.asarray(array)
    code = _idx_type_code(arr.dtype, name)
    if not 1 <= arr.ndim <= 255:
        raise IDXError(
            f"{name}: IDX stores arrays with 1 to 255 dimensions, got {arr.ndim}"
        )
    if any(d > _MAX_DIM for d in arr.shape):
        raise IDXError(
            f"{name}: IDX dimension sizes must fit in uint32, got shape {arr.shape}"
        )
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    body = np.ascontiguousarray(arr, dtype=IDX_TYPE_CODES[code]).tobytes()
    return header + body


def write_idx(path: PathLike, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` as IDX, gzip-compressed if ``path`` ends in ``.gz``.

    Supported dtypes: uint8, int8, int16, int32, float32, float64 (any byte
    order; stored big-endian). Useful for tests and for making your own sets.
    """
    data = encode_idx(array, os.fspath(path))
    if os.fspath(path).endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    Path(path).write_bytes(data)
