"""The actor's view of a learner: a small client interface and its gRPC implementation.

:class:`ActorWorker` depends only on :class:`LearnerClient`; tests may hand it any
object with these methods. Every call has a deadline; failures arrive as
fleetmind errors (``UnavailableError`` for a learner that cannot be reached,
``PreconditionError`` for a session the learner no longer knows).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Protocol

import grpc

from fleetmind.rpc.auth import bearer_metadata
from fleetmind.rpc.channel import ChannelConfig, create_channel
from fleetmind.rpc.generated import training_pb2 as pb
from fleetmind.rpc.generated import training_pb2_grpc as pb_grpc
from fleetmind.rpc.status import error_from_rpc


class LearnerClient(Protocol):
    """What an actor needs from its learner."""

    def register(self, request: pb.RegisterRequest) -> pb.RegisterResponse:
        """Open a session."""
        ...

    def heartbeat(self, request: pb.HeartbeatRequest) -> pb.HeartbeatResponse:
        """Say the actor is alive; learn the version and whether training is done."""
        ...

    def push(self, chunks: Iterable[pb.TrajectoryChunk]) -> pb.PushResponse:
        """Stream trajectory chunks."""
        ...

    def weights(self, request: pb.GetWeightsRequest) -> tuple[list[pb.WeightsChunk], float]:
        """The chunks of a newer version (empty when none came within ``wait_s``) and the
        ``time.monotonic()`` when the first arrived (the end of the wait)."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


class GrpcLearnerClient:
    """:class:`LearnerClient` over one gRPC channel."""

    def __init__(
        self,
        target: str,
        channel_config: ChannelConfig,
        token: str | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.target = target
        self.timeout_s = timeout_s
        # Reconnecting is the actor's job (with its own backoff and jitter): one try per call.
        channel_config.max_attempts = 1
        self.channel = create_channel(target, channel_config)
        self.stub = pb_grpc.LearnerStub(self.channel)  # type: ignore[no-untyped-call]
        self.metadata = bearer_metadata(token) if token else None

    def register(self, request: pb.RegisterRequest) -> pb.RegisterResponse:
        """Open a session."""
        try:
            response: pb.RegisterResponse = self.stub.Register(
                request, timeout=self.timeout_s, metadata=self.metadata
            )
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, self.target) from None
        return response

    def heartbeat(self, request: pb.HeartbeatRequest) -> pb.HeartbeatResponse:
        """Say the actor is alive."""
        try:
            response: pb.HeartbeatResponse = self.stub.Heartbeat(
                request, timeout=min(self.timeout_s, 5.0), metadata=self.metadata
            )
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, self.target) from None
        return response

    def push(self, chunks: Iterable[pb.TrajectoryChunk]) -> pb.PushResponse:
        """Stream trajectory chunks."""
        try:
            response: pb.PushResponse = self.stub.PushTrajectories(
                iter(chunks), timeout=self.timeout_s, metadata=self.metadata
            )
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, self.target) from None
        return response

    def weights(self, request: pb.GetWeightsRequest) -> tuple[list[pb.WeightsChunk], float]:
        """The chunks of a newer version, or none, and when the first arrived."""
        chunks: list[pb.WeightsChunk] = []
        first_at = 0.0
        try:
            stream = self.stub.GetWeights(
                request, timeout=self.timeout_s + request.wait_s, metadata=self.metadata
            )
            for chunk in stream:
                if not chunks:
                    first_at = time.monotonic()
                chunks.append(chunk)
                if chunk.offset + len(chunk.data) >= chunk.total_bytes:
                    # The version is complete (the assembler checks its hash): do not
                    # wait for the stream's end, which costs about a millisecond here.
                    stream.cancel()
                    break
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, self.target) from None
        return chunks, first_at or time.monotonic()

    def close(self) -> None:
        """Close the channel."""
        self.channel.close()
