"""Readers (and tiny writers, for tests and fixtures) of the on-disk dataset formats.

- IDX (the MNIST / Fashion-MNIST format): a 4-byte magic number ``00 00 <type> <ndim>``, then ``ndim``
  big-endian uint32 dimensions, then the data in big-endian order. Files may be gzip-compressed.
- CIFAR "python version": pickled dicts written by Python 2 (bytes keys, numpy arrays). They are
  loaded with a restricted unpickler that only accepts what these files contain (numpy arrays,
  dtypes, and the latin-1 bytes codec), because a pickle can otherwise run arbitrary code.
"""

from __future__ import annotations

import gzip
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

# IDX type code -> numpy dtype (big-endian where it matters).
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES: dict[np.dtype, int] = {dtype: code for code, dtype in _IDX_DTYPES.items()}


class DataFormatError(ValueError):
    """A data file exists but is not in the expected format (the message names the file)."""


def _open_maybe_gzip(path: Path) -> bytes:
    raw = path.read_bytes()
    # gzip magic bytes; checking content (not the suffix) also accepts renamed files.
    if raw[:2] == b"\x1f\x8b":
        return gzip.decompress(raw)
    return raw


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into a native-endian numpy array."""
    path = Path(path)
    data = _open_maybe_gzip(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataFormatError(f"{path} is not an IDX file: the magic number must start with two zero bytes")
    type_code, ndim = data[2], data[3]
    if type_code not in _IDX_DTYPES:
        raise DataFormatError(f"{path}: unknown IDX element type code 0x{type_code:02x}")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataFormatError(f"{path}: truncated IDX header ({len(data)} bytes)")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) - header_len != expected:
        raise DataFormatError(
            f"{path}: IDX header says shape {dims} ({expected} data bytes) "
            f"but the file holds {len(data) - header_len} data bytes"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=True)


def write_idx(path: str | Path, array: np.ndarray, *, compress: bool | None = None) -> None:
    """Write ``array`` as an IDX file; gzip-compressed when ``compress`` (default: name ends in .gz)."""
    path = Path(path)
    array = np.asarray(array)
    big_endian = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    if big_endian not in _IDX_CODES:
        raise ValueError(f"IDX cannot store dtype {array.dtype}; use uint8, int8, int16, int32, float32/64")
    header = bytes([0, 0, _IDX_CODES[big_endian], array.ndim])
    header += np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + array.astype(big_endian).tobytes()
    if compress is None:
        compress = path.suffix == ".gz"
    path.write_bytes(gzip.compress(payload) if compress else payload)


def _numpy_reconstruct():
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


def _numpy_scalar():
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import scalar
    return scalar


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that only resolves the globals found in CIFAR pickles (no arbitrary code)."""

    def find_class(self, module: str, name: str) -> Any:
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "_reconstruct":
            return _numpy_reconstruct()
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "scalar":
            return _numpy_scalar()
        if module == "numpy" and name == "ndarray":
            return np.ndarray
        if module == "numpy" and name == "dtype":
            return np.dtype
        if module == "_codecs" and name == "encode":
            import codecs

            return codecs.encode
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a data pickle")


def read_cifar_pickle(path: str | Path) -> dict[str, Any]:
    """Load one CIFAR python batch/meta file; bytes keys are decoded to str."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            obj = _RestrictedUnpickler(handle, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise DataFormatError(f"{path} is not a CIFAR python pickle: {exc}") from exc
    if not isinstance(obj, dict):
        raise DataFormatError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    return {key.decode("latin-1") if isinstance(key, bytes) else key: value for key, value in obj.items()}


def write_cifar_pickle(path: str | Path, content: dict[str, Any]) -> None:
    """Write a dict the way the real CIFAR files are stored (bytes keys, pickle protocol 2)."""
    encoded = {
        key.encode("latin-1") if isinstance(key, str) else key: value for key, value in content.items()
    }
    buffer = io.BytesIO()
    pickle.dump(encoded, buffer, protocol=2)
    Path(path).write_bytes(buffer.getvalue())


def decode_names(names: list[Any]) -> list[str]:
    """CIFAR meta files hold class names as bytes; return them as str."""
    return [name.decode("utf-8") if isinstance(name, bytes) else str(name) for name in names]
