"""Tests for oipwidgets.idx: IDX round trips and clear errors on bad files."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from oipwidgets.models.idx import IDX_TYPE_CODES, IDXError, encode_idx, read_idx, write_idx

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


def _sample(dtype: type, shape: tuple[int, ...] = (3, 4, 5)) -> np.ndarray:
    """Deterministic array of ``dtype`` using negative values/fractions where possible."""
    values = np.arange(int(np.prod(shape))) - 7
    if np.dtype(dtype).kind == "f":
        values = values * 0.25
    if np.dtype(dtype).kind == "u":
        values = np.abs(values)
    return values.astype(dtype).reshape(shape)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_round_trip_every_dtype(tmp_path: Path, dtype: type, suffix: str) -> None:
    arr = _sample(dtype)
    path = tmp_path / f"data.idx{suffix}"
    write_idx(path, arr)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype)
    assert out.dtype.isnative
    assert out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)
    assert out.flags.writeable
    assert path.read_bytes().startswith(b"\x1f\x8b") == (suffix == ".gz")


@pytest.mark.parametrize("shape", [(7,), (2, 3), (1, 2, 3, 4), (0, 28, 28)])
def test_round_trip_shapes(tmp_path: Path, shape: tuple[int, ...]) -> None:
    arr = _sample(np.uint8, shape)
    write_idx(tmp_path / "a.idx", arr)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx"), arr)
    assert read_idx(tmp_path / "a.idx").shape == shape


def test_round_trip_big_endian_input(tmp_path: Path) -> None:
    arr = np.array([1, -2, 300], dtype=">i4")
    write_idx(str(tmp_path / "be.idx"), arr)
    out = read_idx(str(tmp_path / "be.idx"))
    assert out.dtype == np.dtype("=i4")
    assert out.tolist() == [1, -2, 300]


def test_header_layout_matches_spec() -> None:
    data = encode_idx(np.zeros((2, 3), dtype=np.int16))
    assert data[:4] == bytes([0, 0, 0x0B, 2])
    assert struct.unpack(">II", data[4:12]) == (2, 3)
    assert len(data) == 12 + 2 * 3 * 2


def test_reads_mnist_style_labels_bytes(tmp_path: Path) -> None:
    raw = bytes([0, 0, 8, 1]) + struct.pack(">I", 4) + bytes([5, 0, 4, 1])
    (tmp_path / "labels").write_bytes(raw)
    out = read_idx(tmp_path / "labels")
    assert out.dtype == np.uint8
    assert out.tolist() == [5, 0, 4, 1]


def test_gzip_detected_by_content_not_suffix(tmp_path: Path) -> None:
    arr = _sample(np.float32)
    gz_no_suffix = tmp_path / "images-idx3-ubyte"
    gz_no_suffix.write_bytes(gzip.compress(encode_idx(arr)))
    np.testing.assert_array_equal(read_idx(gz_no_suffix), arr)

    raw_with_gz_suffix = tmp_path / "raw.gz"
    raw_with_gz_suffix.write_bytes(encode_idx(arr))
    np.testing.assert_array_equal(read_idx(raw_with_gz_suffix), arr)


def _write_raw(path: Path, data: bytes, gz: bool) -> Path:
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


GOOD = encode_idx(np.arange(12, dtype=np.int16).reshape(3, 4))


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        (b"\x50\x4b\x03\x04" + GOOD[4:], ["bad IDX magic", "50 4b 03 04", "0x08", "0x0E"]),
        (b"\x00\x00\x07\x02" + GOOD[4:], ["bad IDX magic", "00 00 07 02", "0x0D (float32)"]),
        (b"\x00\x00\x08\x00", ["0 dimensions"]),
        (b"\x00\x00", ["truncated header"]),
        (GOOD[:10], ["truncated header", "12", "10"]),
        (GOOD[:-3], ["truncated data", "expected", "24", "21"]),
        (GOOD + b"\x00\x01", ["trailing", "2 trailing extra bytes"]),
    ],
    ids=["bad-magic", "unknown-type", "zero-dims", "short-header", "short-dims",
         "truncated", "trailing"],
)
def test_bad_files_raise_idx_error_naming_file(
    tmp_path: Path, gz: bool, data: bytes, fragments: list[str]
) -> None:
    path = _write_raw(tmp_path / "broken-file-idx", data, gz)
    with pytest.raises(IDXError) as info:
        read_idx(path)
    message = str(info.value)
    assert "broken-file-idx" in message
    for fragment in fragments:
        assert fragment in message


def test_truncated_data_reports_expected_and_found(tmp_path: Path) -> None:
    path = _write_raw(tmp_path / "short.idx", GOOD[:-3], gz=False)
    with pytest.raises(IDXError, match=r"expected 24 bytes after the header .*, found 21"):
        read_idx(path)


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda gz: gz[: len(gz) // 2],  # stream cut short
        lambda gz: gz[:12] + bytes(b ^ 0xFF for b in gz[12:]),  # garbled deflate data
        lambda gz: gz[:-8] + b"\xde\xad\xbe\xef" + gz[-4:],  # bad CRC
    ],
    ids=["cut", "garbled", "bad-crc"],
)
def test_corrupt_gzip_raises_idx_error(tmp_path: Path, corrupt) -> None:
    path = tmp_path / "corrupt-idx.gz"
    path.write_bytes(corrupt(gzip.compress(GOOD)))
    with pytest.raises(IDXError, match="corrupt gzip") as info:
        read_idx(path)
    assert "corrupt-idx.gz" in str(info.value)


def test_idx_error_is_value_error() -> None:
    assert issubclass(IDXError, ValueError)


def test_missing_file_names_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope-idx1-ubyte"
    with pytest.raises(FileNotFoundError, match="nope-idx1-ubyte"):
        read_idx(missing)


@pytest.mark.parametrize(
    "arr", [np.zeros(3, dtype=bool), np.zeros(3, dtype=np.uint16), np.zeros(3, dtype=np.int64)]
)
def test_write_rejects_unsupported_dtype(tmp_path: Path, arr: np.ndarray) -> None:
    with pytest.raises(IDXError, match="cannot be stored in IDX") as info:
        write_idx(tmp_path / "out.idx", arr)
    assert "out.idx" in str(info.value)
    assert "uint8" in str(info.value)
    assert not (tmp_path / "out.idx").exists()


def test_write_rejects_scalar(tmp_path: Path) -> None:
    with pytest.raises(IDXError, match="1 to 255 dimensions"):
        write_idx(tmp_path / "s.idx", np.uint8(3))


def test_type_code_table() -> None:
    assert {c: d.newbyteorder("=").name for c, d in IDX_TYPE_CODES.items()} == {
        0x08: "uint8",
        0x09: "int8",
        0x0B: "int16",
        0x0C: "int32",
        0x0D: "float32",
        0x0E: "float64",
    }


def test_hostile_gzip_is_refused_without_a_large_allocation(tmp_path: Path) -> None:
    """A small .gz that inflates to far more than its header declares (a "zip bomb") is refused after reading at
    most the declared size plus a bounded look at the rest; a header that declares gigabytes backed by a few bytes
    of data is refused as truncated without allocating them."""
    import tracemalloc

    bomb = tmp_path / "bomb-idx.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as f:
        f.write(encode_idx(np.zeros(10, np.uint8)))
        zeros = bytes(1 << 20)
        for _ in range(300):  # 300 MiB of trailing zeros in a file of ~300 KB
            f.write(zeros)
    assert bomb.stat().st_size < 2_000_000
    huge = _write_raw(tmp_path / "huge-idx", b"\x00\x00\x08\x03" + (2**31 - 1).to_bytes(4, "big") * 3 + b"abc", True)
    tracemalloc.start()
    try:
        with pytest.raises(IDXError, match="more than .* trailing extra bytes"):
            read_idx(bomb)
        with pytest.raises(IDXError, match="truncated data: expected .* found 3"):
            read_idx(huge)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100 * 2**20, f"peak {peak / 2**20:.0f} MiB"
