"""The actor's view of a learner over gRPC: :class:`~fleetmind.core.exchange.LearnerClient`.

Plain types in, plain types out: chunks are encoded and weights assembled and
checked here. Every call has a deadline; failures arrive as fleetmind errors
(``UnavailableError`` for a learner that cannot be reached, ``PreconditionError``
for a session the learner no longer knows).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterable

import grpc

from fleetmind.core.errors import ConfigError, InvalidInputError, UnavailableError
from fleetmind.core.exchange import Chunk, ExchangeAnswer, PushReply, SessionInfo, Weights
from fleetmind.rpc.auth import bearer_metadata
from fleetmind.rpc.channel import ChannelConfig, create_channel
from fleetmind.rpc.generated import training_pb2 as pb
from fleetmind.rpc.generated import training_pb2_grpc as pb_grpc
from fleetmind.rpc.status import error_from_rpc
from fleetmind.rpc.training_codec import chunk_pb
from fleetmind.rpc.weights_codec import WeightAssembler, completes_version

EXCHANGE_LIFETIME_S = 600.0
"""Deadline of an Exchange stream; an actor opens a new one well before it passes."""


def _reply(msg: pb.PushResponse) -> PushReply:
    return PushReply(int(msg.version), bool(msg.done), int(msg.accepted), int(msg.dropped))


def session_info(msg: pb.RegisterResponse) -> SessionInfo:
    """A register answer as plain types (InvalidInputError for configs that are not JSON)."""
    try:
        algo_config = json.loads(msg.algo_config)
        train_config = json.loads(msg.train_config)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"the learner sent a config that is not JSON: {exc}") from None
    return SessionInfo(
        session_id=msg.session_id,
        incarnation=int(msg.incarnation),
        version=int(msg.version),
        algo=msg.algo,
        algo_config=algo_config,
        train_config=train_config,
        rollout_steps=int(msg.rollout_steps),
        seed=int(msg.seed),
        mode=msg.mode,
        session_secret=msg.session_secret,
    )


class GrpcLearnerClient:
    """:class:`~fleetmind.core.exchange.LearnerClient` over one gRPC channel."""

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

    def register(self, actor_id: str, env_id: str, num_envs: int, pid: int) -> SessionInfo:
        """Open a session."""
        request = pb.RegisterRequest(actor_id=actor_id, num_envs=num_envs, env_id=env_id, pid=pid)
        try:
            response: pb.RegisterResponse = self.stub.Register(
                request, timeout=self.timeout_s, metadata=self.metadata
            )
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, self.target) from None
        return session_info(response)

    def heartbeat(self, session: SessionInfo) -> PushReply:
        """Say the actor is alive."""
        request = pb.HeartbeatRequest(
            session_id=session.session_id,
            incarnation=session.incarnation,
            session_secret=session.session_secret,
        )
        try:
            response: pb.HeartbeatResponse = self.stub.Heartbeat(
                request, timeout=min(self.timeout_s, 5.0), metadata=self.metadata
            )
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, self.target) from None
        return PushReply(int(response.version), bool(response.done))

    def push(self, chunks: Iterable[Chunk]) -> PushReply:
        """Stream chunks."""
        try:
            response: pb.PushResponse = self.stub.PushTrajectories(
                (chunk_pb(c) for c in chunks), timeout=self.timeout_s, metadata=self.metadata
            )
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, self.target) from None
        return _reply(response)

    def weights(
        self, session: SessionInfo, have_version: int, wait_s: float
    ) -> tuple[Weights | None, float]:
        """A newer version, or none, and when it began to arrive."""
        request = pb.GetWeightsRequest(
            session_id=session.session_id,
            incarnation=session.incarnation,
            have_version=have_version,
            wait_s=wait_s,
            session_secret=session.session_secret,
        )
        assembler = WeightAssembler()
        first_at = 0.0
        try:
            stream = self.stub.GetWeights(
                request, timeout=self.timeout_s + wait_s, metadata=self.metadata
            )
            for chunk in stream:
                if not assembler.started:
                    first_at = time.monotonic()
                assembler.add(chunk)
                if completes_version(chunk):
                    # The version is complete (its hash is checked below): do not
                    # wait for the stream's end, which costs about a millisecond here.
                    stream.cancel()
                    break
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, self.target) from None
        if not assembler.started:
            return None, time.monotonic()
        return assembler.weights(), first_at

    def exchange(self) -> GrpcExchangeStream:
        """Open an Exchange stream whose deadline is ``EXCHANGE_LIFETIME_S`` away."""
        return GrpcExchangeStream(self, EXCHANGE_LIFETIME_S)

    def close(self) -> None:
        """Close the channel."""
        self.channel.close()


class GrpcExchangeStream:
    """:class:`~fleetmind.core.exchange.ExchangeStream` over one bidirectional ``Exchange``.

    Chunks go through a queue that gRPC's request thread drains; answers are read in
    the caller's thread. Another thread (the actor's heartbeat) may cancel a stream on
    which an answer is overdue, which :meth:`round` then reports as UnavailableError.
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

    def round(self, chunk: Chunk) -> ExchangeAnswer:
        """Send ``chunk``; read until the version that answers it is complete (or done)."""
        with self._lock:
            self._awaiting = True
            self._last = time.monotonic()
        self._requests.put(chunk_pb(chunk))
        assembler = WeightAssembler()
        reply = PushReply(-1)
        first_at = 0.0
        while True:
            response = self._receive()
            if response.HasField("push"):
                reply = _reply(response.push)
                if reply.done:
                    return ExchangeAnswer(reply, None, first_at or time.monotonic())
            if response.HasField("weights"):
                if not assembler.started:
                    first_at = time.monotonic()
                assembler.add(response.weights)
                if assembler.complete:
                    return ExchangeAnswer(reply, assembler.weights(), first_at)

    def _receive(self) -> pb.ExchangeResponse:
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
            elif response.HasField("push") and response.push.done:
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
