"""The actor's view of a learner: a small client interface and its gRPC implementation.

:class:`ActorWorker` depends only on :class:`LearnerClient`; tests may hand it any
object with these methods. Every call has a deadline; failures arrive as
fleetmind errors (``UnavailableError`` for a learner that cannot be reached,
``PreconditionError`` for a session the learner no longer knows).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable
from typing import Protocol

import grpc

from fleetmind.core.errors import ConfigError, UnavailableError
from fleetmind.rpc.auth import bearer_metadata
from fleetmind.rpc.channel import ChannelConfig, create_channel
from fleetmind.rpc.generated import training_pb2 as pb
from fleetmind.rpc.generated import training_pb2_grpc as pb_grpc
from fleetmind.rpc.status import error_from_rpc
from fleetmind.runtime.learner.weight_store import completes_version


class ExchangeStream(Protocol):
    """One session's sync-mode stream: chunks up, each answered by the next version."""

    def send(self, chunk: pb.TrajectoryChunk) -> None:
        """Queue a chunk (returns at once; a failure shows in :meth:`receive`)."""
        ...

    def receive(self) -> pb.ExchangeResponse:
        """The next message (an empty one while the learner updates)."""
        ...

    def cancel_if_idle(self, idle_s: float) -> bool:
        """Cancel when an answer is awaited and nothing arrived for ``idle_s`` (True)."""
        ...

    @property
    def age_s(self) -> float:
        """Seconds since the stream opened."""
        ...

    def close(self) -> None:
        """End the stream (the learner sees its end, or a cancellation)."""
        ...


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

    def exchange(self) -> ExchangeStream:
        """Open a sync-mode exchange stream."""
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
                if completes_version(chunk):
                    # The version is complete (the assembler checks its hash): do not
                    # wait for the stream's end, which costs about a millisecond here.
                    stream.cancel()
                    break
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, self.target) from None
        return chunks, first_at or time.monotonic()

    def exchange(self) -> GrpcExchangeStream:
        """Open an Exchange stream whose deadline is ``EXCHANGE_LIFETIME_S`` away."""
        return GrpcExchangeStream(self, EXCHANGE_LIFETIME_S)

    def close(self) -> None:
        """Close the channel."""
        self.channel.close()


EXCHANGE_LIFETIME_S = 600.0
"""Deadline of an Exchange stream; an actor opens a new one well before it passes."""


class GrpcExchangeStream:
    """:class:`ExchangeStream` over one bidirectional ``Exchange`` call.

    Chunks go through a queue that gRPC's request thread drains; answers are read in
    the caller's thread. Another thread (the actor's heartbeat) may cancel a stream on
    which an answer is overdue, which :meth:`receive` then reports as UnavailableError.
    """

    def __init__(self, client: GrpcLearnerClient, lifetime_s: float) -> None:
        self.target = client.target
        self._requests: queue.SimpleQueue[pb.TrajectoryChunk | None] = queue.SimpleQueue()
        self._opened = time.monotonic()
        self._lock = threading.Lock()
        self._awaiting = False
        self._last = self._opened
        self._idle_cancelled: float | None = None
        self._call = client.stub.Exchange(
            iter(self._requests.get, None), timeout=lifetime_s, metadata=client.metadata
        )

    @property
    def age_s(self) -> float:
        """Seconds since the stream opened."""
        return time.monotonic() - self._opened

    def send(self, chunk: pb.TrajectoryChunk) -> None:
        """Queue ``chunk``; its answer is due from now on."""
        with self._lock:
            self._awaiting = True
            self._last = time.monotonic()
        self._requests.put(chunk)

    def receive(self) -> pb.ExchangeResponse:
        """The next message; fleetmind errors for a failed or ended stream."""
        try:
            response: pb.ExchangeResponse = next(self._call)
        except StopIteration:
            raise UnavailableError(f"the learner at {self.target} ended the stream") from None
        except grpc.RpcError as exc:
            if self._idle_cancelled is not None:
                raise UnavailableError(
                    f"no answer from the learner at {self.target} for "
                    f"{self._idle_cancelled:.0f}s (not even its keep-alive): connection lost?"
                ) from None
            if isinstance(exc, grpc.Call) and exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                raise ConfigError(
                    f"the learner at {self.target} has no Exchange call: it runs an older "
                    "fleetmind; run the same version on learner and actors"
                ) from None
            raise error_from_rpc(exc, self.target) from None
        with self._lock:
            self._last = time.monotonic()
            if response.HasField("weights"):
                if completes_version(response.weights):
                    self._awaiting = False  # the version is complete
            elif response.HasField("push"):
                self._awaiting = False  # answered without weights: training is done
        return response

    def cancel_if_idle(self, idle_s: float) -> bool:
        """Cancel when an answer is awaited and nothing came for ``idle_s``."""
        with self._lock:
            if not self._awaiting or time.monotonic() - self._last < idle_s:
                return False
            self._idle_cancelled = idle_s
        self._call.cancel()
        return True

    def close(self) -> None:
        """Half-close, then cancel whatever is left of the call."""
        self._requests.put(None)
        self._call.cancel()
