"""Policy weights on the wire: one version <-> a stream of checked chunks.

A version is encoded once: every tensor laid end to end in one byte blob,
described by a JSON manifest (name, datatype, shape, offset, size) and the
blob's SHA-256, cut into messages of ``chunk_bytes``. Every actor asking for that
version gets the same prebuilt messages, so a 100 MB model crosses the default
4 MB message limit and is never re-serialised per actor::

    messages = encode_weights(weights)                      # learner, once per version
    assembler = WeightAssembler(); assembler.add(chunk)...  # actor
    weights = assembler.weights()                           # checked: sizes, hash, stats
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from fleetmind.core.errors import InvalidInputError
from fleetmind.core.exchange import Weights
from fleetmind.rpc.codec import decode_tensor, encode_tensor
from fleetmind.rpc.generated import training_pb2 as pb
from fleetmind.rpc.training_codec import stats_np, stats_pb

DEFAULT_CHUNK_BYTES = 1024 * 1024
"""Bytes of weights per streamed message."""


def encode_weights(weights: Weights, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> tuple[bytes, ...]:
    """The serialised ``WeightsChunk`` messages of one version, manifest first."""
    if chunk_bytes <= 0:
        raise InvalidInputError(f"chunk_bytes={chunk_bytes} must be positive")
    entries = []
    parts = []
    offset = 0
    for name, array in weights.tensors.items():
        datatype, shape, raw = encode_tensor(array, name)
        entries.append(
            {"name": name, "datatype": datatype, "shape": list(shape), "offset": offset,
             "nbytes": len(raw)}
        )  # fmt: skip
        parts.append(raw)
        offset += len(raw)
    blob = b"".join(parts)
    digest = hashlib.sha256(blob).digest()
    view = memoryview(blob)
    messages = []
    for start in range(0, max(len(blob), 1), chunk_bytes):
        msg = pb.WeightsChunk(
            version=weights.version,
            total_bytes=len(blob),
            offset=start,
            data=bytes(view[start : start + chunk_bytes]),
        )
        if start == 0:
            msg.manifest = json.dumps(entries)
            msg.sha256 = digest
            if weights.obs_stats is not None:
                msg.obs_stats.CopyFrom(stats_pb(weights.obs_stats))
        messages.append(msg.SerializeToString())
    return tuple(messages)


def completes_version(chunk: pb.WeightsChunk) -> bool:
    """Whether ``chunk`` is the last of its version (its bytes reach ``total_bytes``)."""
    return chunk.offset + len(chunk.data) >= chunk.total_bytes


class WeightAssembler:
    """Rebuilds one version from its chunks and checks it.

    The chunks are copied once, into a buffer of the announced size, and hashed as
    they arrive; :meth:`weights` returns arrays that view that buffer.
    """

    def __init__(self) -> None:
        self.version = -1
        self._first: pb.WeightsChunk | None = None
        self._buffer = bytearray()
        self._filled = 0
        self._hash = hashlib.sha256()

    def add(self, chunk: pb.WeightsChunk) -> None:
        """Append the next chunk; InvalidInputError when the stream is inconsistent."""
        if self._first is None:
            if chunk.offset != 0 or not chunk.manifest:
                raise InvalidInputError("weight stream must start with the manifest chunk")
            try:
                self._buffer = bytearray(chunk.total_bytes)
            except (MemoryError, OverflowError) as exc:
                raise InvalidInputError(
                    f"weights announce {chunk.total_bytes} bytes: cannot hold them"
                ) from exc
            self._first = chunk
            self.version = int(chunk.version)
        elif chunk.version != self.version:
            raise InvalidInputError(
                f"weight stream mixes versions {self.version} and {chunk.version}"
            )
        if chunk.offset != self._filled:
            raise InvalidInputError(
                f"weight chunk at offset {chunk.offset}, expected {self._filled}"
            )
        data = chunk.data
        end = self._filled + len(data)
        if end > len(self._buffer):
            raise InvalidInputError(
                f"weight chunks run past the announced {len(self._buffer)} bytes"
            )
        self._buffer[self._filled : end] = data
        self._hash.update(data)
        self._filled = end

    @property
    def started(self) -> bool:
        """Whether any chunk arrived."""
        return self._first is not None

    @property
    def complete(self) -> bool:
        """Whether every announced byte arrived (the hash is checked by :meth:`weights`)."""
        return self._first is not None and self._filled == len(self._buffer)

    def weights(self) -> Weights:
        """The assembled version, checked: complete, hash, manifest, statistics."""
        first = self._first
        if first is None:
            raise InvalidInputError("no weights received")
        if self._filled != first.total_bytes:
            raise InvalidInputError(
                f"weights hold {self._filled} bytes of {first.total_bytes}: stream cut short"
            )
        digest = self._hash.digest()
        if digest != first.sha256:
            raise InvalidInputError("weights fail their SHA-256 check")
        view = memoryview(self._buffer)
        tensors: dict[str, np.ndarray] = {}
        try:
            entries = json.loads(first.manifest)
            for e in entries:
                start, size = int(e["offset"]), int(e["nbytes"])
                if start < 0 or start + size > len(self._buffer):
                    raise InvalidInputError(f"weight {e['name']} lies outside the blob")
                array = decode_tensor(view[start : start + size], e["datatype"], e["shape"],
                                      str(e["name"]))  # fmt: skip
                tensors[str(e["name"])] = array if array.flags.aligned else array.copy()
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInputError(f"weights manifest is malformed: {exc}") from None
        stats = None
        if first.HasField("obs_stats"):
            shape = tuple(int(d) for d in first.obs_stats.mean.shape)
            stats = stats_np(first.obs_stats, shape, "weights.obs_stats")
        return Weights(self.version, tensors, stats, digest.hex())
