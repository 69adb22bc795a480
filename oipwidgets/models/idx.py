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


def _decompress_if_gzip(raw: bytes, name: str) -> bytes:
    """Return ``raw`` gunzipped if it starts with the gzip magic, else unchanged."""
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise IDXError(
            f"{name}: corrupt gzip stream (file starts with gzip magic 1f 8b but "
            f"cannot be decompressed: {exc})"
        ) from exc


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode uncompressed IDX bytes into an array.

    Returns an array with the shape from the header and the native-byte-order
    version of the stored dtype (uint8, int8, int16, int32, float32, float64).
    ``name`` is only used in error messages (normally the file path).
    """
    if len(data) < 4:
        raise IDXError(
            f"{name}: truncated header: {len(data)} bytes, an IDX header needs at "
            f"least 4 (00 00 <type code> <ndim>)"
        )
    if data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPE_CODES:
        raise IDXError(
            f"{name}: bad IDX magic: first bytes are {_hex(data[:4])}, expected "
            f"00 00 <type code> <ndim> with type code one of {_valid_codes_text()}"
        )
    dtype = IDX_TYPE_CODES[data[2]]
    ndim = data[3]
    if ndim == 0:
        raise IDXError(f"{name}: IDX header declares 0 dimensions; need at least 1")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise IDXError(
            f"{name}: truncated header: {ndim} dimensions need {header_len} header "
            f"bytes, found {len(data)}"
        )
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype_name = dtype.newbyteorder("=").name
    expected = math.prod(shape) * dtype.itemsize
    found = len(data) - header_len
    if found < expected:
        raise IDXError(
            f"{name}: truncated data: expected {expected} bytes after the header "
            f"(shape {shape} of {dtype_name}), found {found}"
        )
    if found > expected:
        raise IDXError(
            f"{name}: {found - expected} trailing extra bytes: expected {expected} "
            f"bytes after the header (shape {shape} of {dtype_name}), found {found}"
        )
    flat = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=header_len)
    # astype copies, so the result is writable and in native byte order.
    return flat.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def read_idx(path: PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a native-byte-order array.

    Gzip is detected by the magic bytes ``1f 8b``, so ``.gz`` files without the
    suffix (and vice versa) work. Raises ``FileNotFoundError`` if ``path`` does
    not exist and ``IDXError`` (naming ``path``) for any malformed content.
    """
    name = os.fspath(path)
    raw = Path(path).read_bytes()
    return parse_idx(_decompress_if_gzip(raw, name), name)


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
