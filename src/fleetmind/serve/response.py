"""ModelInferResponse bytes, with everything but the data encoded once.

A response repeats, call after call, the model's name and version and each
output's name, datatype and shape; only the request id and the raw output bytes
change. :class:`ResponseEncoder` has protobuf encode the fixed parts once per
(outputs, shapes) and then writes a response as a concatenation of byte
strings. Protobuf's wire format allows exactly this: a message's fields may be
written in pieces and concatenated serialised messages merge::

    encoder = ResponseEncoder("cartpole", "3", {"action": "INT64", "value": "FP32"})
    raw = encoder.encode("req-1", ("action", "value"), outputs)   # bytes for the wire
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from fleetmind.rpc.codec import numpy_dtype
from fleetmind.rpc.generated import grpc_predict_v2_pb2 as pb

_RAW_OUTPUT_TAG = bytes([(6 << 3) | 2])
"""Field 6 (``raw_output_contents``), length-delimited."""

MAX_CACHED_LAYOUTS = 256
"""Distinct (outputs, shapes) layouts kept; requests with unusual batch sizes
beyond that are still answered, the cache just starts over."""


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


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
        self, request_id: str, names: tuple[str, ...], outputs: Mapping[str, np.ndarray]
    ) -> bytes:
        """The response carrying ``outputs[name]`` for each of ``names``, in order."""
        arrays = [outputs[name] for name in names]
        key = (names, tuple([a.shape for a in arrays]))
        layout = self._layouts.get(key)
        if layout is None:
            layout = self._layout(*key)
        parts = [self._head]
        if request_id:
            parts.append(pb.ModelInferResponse(id=request_id).SerializeToString())
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
