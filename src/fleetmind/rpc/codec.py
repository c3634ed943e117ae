"""Tensors on the wire: numpy arrays <-> raw little-endian bytes, datatype and shape.

The datatype names are the Open Inference Protocol's (``FP32``, ``INT64``,
``BOOL``...); every fleetmind service uses them. Decoding never copies: the array
returned by :func:`decode_tensor` is a read-only view of the received bytes::

    datatype, shape, raw = encode_tensor(np.zeros((4, 3), np.float32))
    array = decode_tensor(raw, datatype, shape, name="observation")

Nothing is ever unpickled: only fixed-width numeric and boolean types travel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from fleetmind.core.errors import InvalidInputError, echo

_DTYPES: dict[str, np.dtype[np.generic]] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
_NAMES: dict[tuple[str, int], str] = {(dt.kind, dt.itemsize): name for name, dt in _DTYPES.items()}

DATATYPES: tuple[str, ...] = tuple(_DTYPES)
"""Datatype names the codec understands."""

MAX_RANK = 16
"""Tensors of higher rank are refused (no real policy needs more)."""


def numpy_dtype(datatype: str, name: str = "tensor") -> np.dtype[np.generic]:
    """The little-endian numpy dtype of a protocol datatype name."""
    try:
        return _DTYPES[datatype]
    except KeyError:
        raise InvalidInputError(
            f"{name}: datatype {echo(datatype)} is not supported; use one of {', '.join(_DTYPES)}"
        ) from None


def datatype_of(dtype: np.dtype[np.generic] | type, name: str = "tensor") -> str:
    """The protocol datatype name of a numpy dtype."""
    dt = np.dtype(dtype)
    try:
        return _NAMES[(dt.kind, dt.itemsize)]
    except KeyError:
        raise InvalidInputError(f"{name}: numpy dtype {dt} has no wire datatype") from None


def check_shape(shape: Sequence[int], name: str = "tensor") -> tuple[int, ...]:
    """``shape`` as a tuple, refusing negative dimensions and absurd ranks."""
    dims = tuple(int(d) for d in shape)
    if len(dims) > MAX_RANK:
        raise InvalidInputError(
            f"{name}: shape {echo(list(dims))} has rank {len(dims)} > {MAX_RANK}"
        )
    if any(d < 0 for d in dims):
        raise InvalidInputError(f"{name}: shape {echo(list(dims))} has a negative dimension")
    return dims


def encode_tensor(array: np.ndarray, name: str = "tensor") -> tuple[str, tuple[int, ...], bytes]:
    """``(datatype, shape, raw little-endian row-major bytes)`` of ``array``."""
    datatype = datatype_of(array.dtype, name)
    wire = array if array.dtype == _DTYPES[datatype] else array.astype(_DTYPES[datatype])
    return datatype, array.shape, wire.tobytes()  # tobytes() is row-major for any layout


def decode_tensor(
    raw: bytes | bytearray | memoryview, datatype: str, shape: Sequence[int], name: str = "tensor"
) -> np.ndarray:
    """The array that ``raw`` holds, a view of it (read-only for ``bytes``);
    InvalidInputError when they disagree."""
    dtype = numpy_dtype(datatype, name)
    dims = check_shape(shape, name)
    expected = math.prod(dims) * dtype.itemsize
    if len(raw) != expected:
        raise InvalidInputError(
            f"{name}: raw contents hold {len(raw)} bytes but shape {list(dims)} of {datatype} "
            f"needs {expected}; send exactly prod(shape) * {dtype.itemsize} bytes"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(dims)


def embedded_message(field_number: int, serialised: bytes) -> bytes:
    """``serialised`` (a message's bytes) encoded as message field ``field_number``.

    This is protobuf's encoding of a length-delimited field, so these bytes, alone or
    concatenated with the enclosing message's other serialised fields, parse as that
    message with the field set. A message serialised once (the weights of a version)
    can so be sent inside another without being parsed and serialised again::

        raw = response.SerializeToString() + embedded_message(2, weights_bytes)
    """
    if field_number < 1:
        raise ValueError(f"field number {field_number} must be positive")
    return _varint(field_number << 3 | 2) + _varint(len(serialised)) + serialised


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
