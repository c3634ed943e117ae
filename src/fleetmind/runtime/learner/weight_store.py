"""Policy weights by version: serialised once on the learner, streamed in chunks.

The learner publishes each new version once: every tensor of the network's
``state_dict`` is laid end to end in one byte blob, described by a JSON manifest
(name, datatype, shape, offset, size) and a SHA-256. Every actor asking for that
version gets the same prebuilt chunk messages, so a 100 MB model crosses the
default 4 MB message limit and is never re-serialised per actor::

    store.publish(version, net, obs_stats)                 # learner, after each update
    for chunk in store.chunks(): ...                       # GetWeights stream
    assembler = WeightAssembler(); assembler.add(chunk)... # actor
    version, stats = assembler.load_into(net)
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass

import torch
from torch import nn

from fleetmind.core.errors import InvalidInputError
from fleetmind.core.normalizer import RunningMeanStd
from fleetmind.rpc.codec import decode_tensor, encode_tensor
from fleetmind.rpc.generated import training_pb2 as pb
from fleetmind.rpc.training_codec import stats_np, stats_pb

DEFAULT_CHUNK_BYTES = 1024 * 1024
"""Bytes of weights per streamed message."""


@dataclass(frozen=True)
class PublishedWeights:
    """One version, ready to stream."""

    version: int
    """Policy version (updates applied)."""
    total_bytes: int
    """Size of the weight blob."""
    messages: tuple[bytes, ...]
    """The stream, serialised once: first message carrying the manifest."""
    sha256: str = ""
    """Hex SHA-256 of the weight blob (equal on learners that agree)."""

    def decoded(self) -> list[pb.WeightsChunk]:
        """The messages parsed back (for tests and in-process use)."""
        return [pb.WeightsChunk.FromString(m) for m in self.messages]


def serialise_module(module: nn.Module) -> tuple[str, bytes]:
    """``(manifest JSON, blob)`` of every tensor in ``module.state_dict()``."""
    entries = []
    parts = []
    offset = 0
    for name, tensor in module.state_dict().items():
        datatype, shape, raw = encode_tensor(tensor.detach().cpu().numpy(), name)
        entries.append({"name": name, "datatype": datatype, "shape": list(shape), "offset": offset})
        entries[-1]["nbytes"] = len(raw)
        parts.append(raw)
        offset += len(raw)
    return json.dumps(entries), b"".join(parts)


class WeightStore:
    """The latest published version (thread-safe: the trainer thread publishes)."""

    def __init__(self, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> None:
        if chunk_bytes <= 0:
            raise InvalidInputError(f"chunk_bytes={chunk_bytes} must be positive")
        self.chunk_bytes = chunk_bytes
        self._latest: PublishedWeights | None = None
        self._lock = threading.Lock()

    def publish(
        self, version: int, module: nn.Module, obs_stats: RunningMeanStd | None
    ) -> PublishedWeights:
        """Serialise ``module`` as ``version`` (once) and make it the latest."""
        manifest, blob = serialise_module(module)
        digest = hashlib.sha256(blob).digest()
        view = memoryview(blob)
        messages = []
        for offset in range(0, max(len(blob), 1), self.chunk_bytes):
            msg = pb.WeightsChunk(
                version=version,
                total_bytes=len(blob),
                offset=offset,
                data=bytes(view[offset : offset + self.chunk_bytes]),
            )
            if offset == 0:
                msg.manifest = manifest
                msg.sha256 = digest
                if obs_stats is not None:
                    msg.obs_stats.CopyFrom(stats_pb(obs_stats))
            messages.append(msg.SerializeToString())
        published = PublishedWeights(version, len(blob), tuple(messages), digest.hex())
        with self._lock:
            self._latest = published
        return published

    def latest(self) -> PublishedWeights | None:
        """The newest published version, if any."""
        with self._lock:
            return self._latest


def completes_version(chunk: pb.WeightsChunk) -> bool:
    """Whether ``chunk`` is the last of its version (its bytes reach ``total_bytes``)."""
    return chunk.offset + len(chunk.data) >= chunk.total_bytes


class WeightAssembler:
    """Rebuilds one version from its chunks on the actor and checks it.

    The chunks are copied once, into a buffer of the announced size, and hashed as
    they arrive; :meth:`load_into` copies each tensor straight from that buffer into
    the network.
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
        """Whether every announced byte arrived (the hash is checked by :meth:`load_into`)."""
        return self._first is not None and self._filled == len(self._buffer)

    def load_into(self, module: nn.Module) -> tuple[int, RunningMeanStd | None]:
        """Copy the assembled weights into ``module``; return the version and statistics."""
        first = self._first
        if first is None:
            raise InvalidInputError("no weights received")
        if self._filled != first.total_bytes:
            raise InvalidInputError(
                f"weights hold {self._filled} bytes of {first.total_bytes}: stream cut short"
            )
        if self._hash.digest() != first.sha256:
            raise InvalidInputError("weights fail their SHA-256 check")
        view = memoryview(self._buffer)
        state = module.state_dict()
        entries = json.loads(first.manifest)
        if sorted(e["name"] for e in entries) != sorted(state):
            raise InvalidInputError("weights do not match the network (different tensor names)")
        with torch.no_grad():
            for e in entries:
                raw = view[e["offset"] : e["offset"] + e["nbytes"]]
                array = decode_tensor(raw, e["datatype"], e["shape"], e["name"])
                target = state[e["name"]]
                if tuple(target.shape) != array.shape:
                    raise InvalidInputError(f"weight {e['name']} has shape {list(array.shape)}")
                if not array.flags.aligned:
                    array = array.copy()
                target.copy_(torch.from_numpy(array))  # a writable view of the buffer
        stats = None
        if first.HasField("obs_stats"):
            shape = tuple(int(d) for d in first.obs_stats.mean.shape)
            stats = stats_np(first.obs_stats, shape, "weights.obs_stats")
        return self.version, stats
