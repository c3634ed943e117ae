"""The ``fleetmind.v1.Learner`` servicer: messages in, endpoint calls, messages out.

Thin: it checks and converts messages (:mod:`fleetmind.rpc.training_codec`) and
calls a :class:`~fleetmind.core.exchange.LearnerEndpoint`, which knows nothing of
protobuf. Weights are encoded once per version (:mod:`fleetmind.rpc.weights_codec`)
in the learner's publishing thread, then streamed as they are to every actor.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from grpc import aio

from fleetmind.core.exchange import Chunk, LearnerEndpoint, Weights
from fleetmind.rpc.codec import embedded_message
from fleetmind.rpc.generated import training_pb2 as pb
from fleetmind.rpc.status import checked_requests, rpc_errors, rpc_stream_errors
from fleetmind.rpc.training_codec import chunk_from_pb
from fleetmind.rpc.weights_codec import encode_weights

SERVICE = pb.DESCRIPTOR.services_by_name["Learner"]
"""Descriptor of the service, for :func:`fleetmind.rpc.create_server`."""

MAX_WAIT_S = 30.0
"""Longest long-poll a GetWeights call may ask for."""

EXCHANGE_TICK_S = 1.0
"""An Exchange stream waiting for the next version sends an empty message this often."""

_WEIGHTS_FIELD = pb.ExchangeResponse.DESCRIPTOR.fields_by_name["weights"].number

Context = aio.ServicerContext[Any, Any]


def _messages(weights: Weights) -> tuple[bytes, ...]:
    """The encoded stream of a version (encoded at publishing; here only if it was not)."""
    if weights.wire is None:
        weights.wire = encode_weights(weights)
    messages: tuple[bytes, ...] = weights.wire
    return messages


class LearnerServicer:
    """Every method converts, calls the endpoint, converts back."""

    def __init__(self, endpoint: LearnerEndpoint) -> None:
        self.endpoint = endpoint
        endpoint.set_weights_encoder(encode_weights)

    @rpc_errors
    async def Register(  # noqa: N802 - gRPC method name
        self, request: pb.RegisterRequest, context: Context
    ) -> pb.RegisterResponse:
        info = self.endpoint.register(
            request.actor_id, request.env_id, int(request.num_envs), int(request.pid)
        )
        return pb.RegisterResponse(
            session_id=info.session_id,
            incarnation=info.incarnation,
            version=info.version,
            algo=info.algo,
            algo_config=json.dumps(info.algo_config),
            train_config=json.dumps(info.train_config),
            rollout_steps=info.rollout_steps,
            seed=info.seed,
            mode=info.mode,
            session_secret=info.session_secret,
        )

    @rpc_errors
    async def Heartbeat(  # noqa: N802 - gRPC method name
        self, request: pb.HeartbeatRequest, context: Context
    ) -> pb.HeartbeatResponse:
        reply = self.endpoint.heartbeat(
            request.session_id, int(request.incarnation), request.session_secret
        )
        return pb.HeartbeatResponse(version=reply.version, done=reply.done)

    @rpc_errors
    async def PushTrajectories(  # noqa: N802 - gRPC method name
        self, request: AsyncIterator[pb.TrajectoryChunk], context: Context
    ) -> pb.PushResponse:
        accepted = dropped = 0
        endpoint = self.endpoint
        async for msg in checked_requests(request):
            taken = self._take(msg)
            if taken is None:
                break
            if taken[1]:
                accepted += 1
            else:
                dropped += 1
        return pb.PushResponse(
            accepted=accepted, dropped=dropped, version=endpoint.version, done=endpoint.done
        )

    def _take(self, msg: pb.TrajectoryChunk) -> tuple[Chunk, bool] | None:
        """Check a chunk and hand it over: (chunk, accepted), or None when training is done."""
        endpoint = self.endpoint
        if endpoint.done:  # the session ends: no need to check what it sent
            endpoint.heartbeat(msg.session_id, int(msg.incarnation), msg.session_secret)
            return None
        endpoint.check_session(msg.session_id, int(msg.incarnation), msg.session_secret)
        chunk = chunk_from_pb(msg, endpoint.contract)
        accepted = endpoint.take(chunk)
        return None if accepted is None else (chunk, accepted)

    @rpc_stream_errors
    async def GetWeights(  # noqa: N802 - gRPC method name
        self, request: pb.GetWeightsRequest, context: Context
    ) -> AsyncIterator[bytes]:
        self.endpoint.check_session(
            request.session_id, int(request.incarnation), request.session_secret
        )
        wait = min(max(0.0, float(request.wait_s)), MAX_WAIT_S)
        remaining = context.time_remaining()
        if remaining is not None:
            wait = min(wait, max(0.0, remaining - 1.0))
        weights = await self.endpoint.wait_for_version(int(request.have_version), wait)
        if weights is None:
            return
        for message in _messages(weights):
            yield message

    @rpc_stream_errors
    async def Exchange(  # noqa: N802 - gRPC method name
        self, request: AsyncIterator[pb.TrajectoryChunk], context: Context
    ) -> AsyncIterator[bytes]:
        """Sync mode: each chunk is answered with the next version's weights.

        The weights were serialised once at publishing; each message is embedded as it
        is (see :func:`fleetmind.rpc.codec.embedded_message`), the first one after the
        push answer.
        """
        endpoint = self.endpoint
        async for msg in checked_requests(request):
            taken = self._take(msg)
            if taken is None:
                yield _done(endpoint.version)
                continue
            chunk, accepted = taken
            weights = None
            while weights is None and not endpoint.done:
                weights = await endpoint.wait_for_version(chunk.policy_version, EXCHANGE_TICK_S)
                if weights is None and not endpoint.done:
                    yield b""  # still updating: the actor's sign that the learner lives
            if weights is None:
                yield _done(endpoint.version)
                continue
            answer = pb.PushResponse(
                accepted=int(accepted), dropped=int(not accepted), version=weights.version
            )
            first, *rest = _messages(weights)
            head = pb.ExchangeResponse(push=answer).SerializeToString()
            yield head + embedded_message(_WEIGHTS_FIELD, first)
            for message in rest:
                yield embedded_message(_WEIGHTS_FIELD, message)

    @rpc_errors
    async def GetStatus(  # noqa: N802 - gRPC method name
        self, request: pb.StatusRequest, context: Context
    ) -> pb.StatusResponse:
        status = self.endpoint.status()
        return pb.StatusResponse(**status.__dict__)


def _done(version: int) -> bytes:
    """The Exchange answer that tells an actor training is over."""
    return pb.ExchangeResponse(push=pb.PushResponse(version=version, done=True)).SerializeToString()
