"""ModelInferResponse bytes, with everything but the data encoded once.

A response repeats, call after call, the model's name and version and each
output's name, datatype and shape; only the request id and the raw output bytes
change. :class:`ResponseEncoder` has protobuf encode the fixed parts once per
(outputs, shapes) and then writes a response as a concatenation of byte
strings. Protobuf's wire format allows exactly this: a message's fields may be
written in pieces and concatenated serialised messages merge::

    encoder = ResponseEncoder("cartpole", "3", {"action": "INT64", "value": "FP32"})
    raw = encoder.encode("req-1", ("action", "value"), outputs)   # bytes for the wire

Each response also carries where its time went on the server, as the response
parameters :data:`QUEUE_TIME` and :data:`COMPUTE_TIME` (INT64 microseconds; the
Open Inference Protocol allows parameters on a response). Their keys are encoded
once too; per call only two varints are written.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from fleetmind.rpc.codec import numpy_dtype
from fleetmind.rpc.generated import grpc_predict_v2_pb2 as pb

_RAW_OUTPUT_TAG = bytes([(6 << 3) | 2])
"""Field 6 (``raw_output_contents``), length-delimited."""

_PARAMETERS_TAG = bytes([(4 << 3) | 2])
"""Field 4 (``parameters``, a map: one length-delimited entry per key)."""

QUEUE_TIME = "queue_time_us"
"""Response parameter: microseconds the request waited for its batch to begin."""
COMPUTE_TIME = "compute_time_us"
"""Response parameter: microseconds the forward pass of its batch took."""

MAX_CACHED_LAYOUTS = 256
"""Distinct (outputs, shapes) layouts kept; requests with unusual batch sizes
beyond that are still answered, the cache just starts over."""


def _varint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _int64_entry_prefixes(key: str) -> tuple[bytes, ...]:
    """Everything of the map entry ``key: int64_param`` before the value's varint, by the
    varint's length (0 unused): a tag, the entry's length, the key, the value's length
    and its tag. Every length is under 128, so each fits one varint byte."""
    raw = key.encode()
    key_field = bytes([(1 << 3) | 2, len(raw)]) + raw
    prefixes = [b""]
    for size in range(1, 11):
        value_field = bytes([(2 << 3) | 2, size + 1, (2 << 3) | 0])  # InferParameter.int64
        entry_length = len(key_field) + len(value_field) + size
        prefixes.append(_PARAMETERS_TAG + bytes([entry_length]) + key_field + value_field)
    return tuple(prefixes)


_QUEUE_PREFIXES = _int64_entry_prefixes(QUEUE_TIME)
_COMPUTE_PREFIXES = _int64_entry_prefixes(COMPUTE_TIME)


def timing_parameters(queue_s: float, compute_s: float) -> bytes:
    """The response parameters :data:`QUEUE_TIME` and :data:`COMPUTE_TIME`, encoded."""
    queue = _varint(max(0, int(queue_s * 1e6)))
    compute = _varint(max(0, int(compute_s * 1e6)))
    return b"".join((_QUEUE_PREFIXES[len(queue)], queue, _COMPUTE_PREFIXES[len(compute)], compute))


class ResponseEncoder:
    """Serialised ``ModelInferResponse`` messages of one model version."""

    def __init__(self, model_name: str, model_version: str, datatypes: Mapping[str, str]) -> None:
        self._head = pb.ModelInferResponse(
            model_name=model_name, model_version=model_version
        ).SerializeToString()
        self._datatypes = dict(datatypes)
        self._dtypes = {name: numpy_dtype(dt, name) for name, dt in datatypes.items()}
        self._layouts: dict[tuple[tuple[str, ...], tuple[tuple[int, ...], ...]], bytes] = {}

    def encode(
        self,
        request_id: str,
        names: tuple[str, ...],
        outputs: Mapping[str, np.ndarray],
        parameters: bytes = b"",
    ) -> bytes:
        """The response carrying ``outputs[name]`` for each of ``names``, in order, and
        the encoded response ``parameters`` (:func:`timing_parameters`)."""
        arrays = [outputs[name] for name in names]
        key = (names, tuple([a.shape for a in arrays]))
        layout = self._layouts.get(key)
        if layout is None:
            layout = self._layout(*key)
        parts = [self._head]
        if request_id:
            parts.append(pb.ModelInferResponse(id=request_id).SerializeToString())
        if parameters:
            parts.append(parameters)
        parts.append(layout)
        dtypes = self._dtypes
        for name, array in zip(names, arrays, strict=True):
            dtype = dtypes[name]
            if array.dtype != dtype:
                array = array.astype(dtype)
            raw = array.tobytes()  # row-major, little-endian
            parts += (_RAW_OUTPUT_TAG, _varint(len(raw)), raw)
        return b"".join(parts)

    def _layout(self, names: tuple[str, ...], shapes: tuple[tuple[int, ...], ...]) -> bytes:
        response = pb.ModelInferResponse()
        for name, shape in zip(names, shapes, strict=True):
            response.outputs.add(name=name, datatype=self._datatypes[name], shape=shape)
        layout = response.SerializeToString()
        if len(self._layouts) >= MAX_CACHED_LAYOUTS:
            self._layouts.clear()
        self._layouts[(names, shapes)] = layout
        return layout
