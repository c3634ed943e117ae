"""The ``fleetmind.v1.Learner`` servicer: messages in, :class:`LearnerCore` calls, messages out."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from grpc import aio

from fleetmind.rpc.codec import embedded_message
from fleetmind.rpc.generated import training_pb2 as pb
from fleetmind.rpc.status import checked_requests, rpc_errors, rpc_stream_errors
from fleetmind.rpc.training_codec import Chunk
from fleetmind.runtime.learner.core import LearnerCore

SERVICE = pb.DESCRIPTOR.services_by_name["Learner"]
"""Descriptor of the service, for :func:`fleetmind.rpc.create_server`."""

MAX_WAIT_S = 30.0
"""Longest long-poll a GetWeights call may ask for."""

EXCHANGE_TICK_S = 1.0
"""An Exchange stream waiting for the next version sends an empty message this often."""

_WEIGHTS_FIELD = pb.ExchangeResponse.DESCRIPTOR.fields_by_name["weights"].number

Context = aio.ServicerContext[Any, Any]


class LearnerServicer:
    """Thin: every method converts, calls the core, converts back."""

    def __init__(
        self, core: LearnerCore, algo: str, algo_config: dict[str, Any], train: dict[str, Any]
    ) -> None:
        self.core = core
        self.algo = algo
        self.algo_json = json.dumps(algo_config)
        self.train_json = json.dumps(train)
        self.seed = int(train.get("seed", 1))
        self._registrations = 0

    @rpc_errors
    async def Register(  # noqa: N802 - gRPC method name
        self, request: pb.RegisterRequest, context: Context
    ) -> pb.RegisterResponse:
        session = self.core.register(request.actor_id, request.env_id, int(request.num_envs))
        self._registrations += 1
        return pb.RegisterResponse(
            session_id=session.session_id,
            incarnation=self.core.incarnation,
            version=self.core.version,
            algo=self.algo,
            algo_config=self.algo_json,
            train_config=self.train_json,
            rollout_steps=self.core.rollout_steps,
            seed=self.seed + 1009 * self._registrations + self.core.env_steps,
            mode=self.core.dist.mode,
        )

    @rpc_errors
    async def Heartbeat(  # noqa: N802 - gRPC method name
        self, request: pb.HeartbeatRequest, context: Context
    ) -> pb.HeartbeatResponse:
        if self.core.done:
            self.core.sessions.pop(request.session_id, None)  # told: it will exit
        else:
            self.core.touch(request.session_id, request.incarnation)
        return pb.HeartbeatResponse(version=self.core.version, done=self.core.done)

    @rpc_errors
    async def PushTrajectories(  # noqa: N802 - gRPC method name
        self, request: AsyncIterator[pb.TrajectoryChunk], context: Context
    ) -> pb.PushResponse:
        accepted = dropped = 0
        core = self.core
        async for msg in checked_requests(request):
            taken = self._take(msg)
            if taken is None:
                break
            if taken[1]:
                accepted += 1
            else:
                dropped += 1
        return pb.PushResponse(
            accepted=accepted, dropped=dropped, version=core.version, done=core.done
        )

    def _take(self, msg: pb.TrajectoryChunk) -> tuple[Chunk, bool] | None:
        """Check a chunk and hand it to the core: (chunk, accepted), or None when training
        is done (the answer says so; the actor will exit, so its session ends here)."""
        core = self.core
        if core.done:
            core.sessions.pop(msg.session_id, None)
            return None
        session = core.touch(msg.session_id, msg.incarnation)
        chunk = core.decode_chunk(msg)
        return chunk, core.accept(session, chunk)

    @rpc_stream_errors
    async def GetWeights(  # noqa: N802 - gRPC method name
        self, request: pb.GetWeightsRequest, context: Context
    ) -> AsyncIterator[bytes]:
        self.core.touch(request.session_id, request.incarnation)
        wait = min(max(0.0, float(request.wait_s)), MAX_WAIT_S)
        remaining = context.time_remaining()
        if remaining is not None:
            wait = min(wait, max(0.0, remaining - 1.0))
        published = await self.core.wait_for_version(int(request.have_version), wait)
        if published is None:
            return
        for message in published.messages:
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
        core = self.core
        async for msg in checked_requests(request):
            taken = self._take(msg)
            if taken is None:
                yield _done(core.version)
                continue
            chunk, accepted = taken
            have = chunk.trajectory.policy_version
            published = None
            while published is None and not core.done:
                published = await core.wait_for_version(have, EXCHANGE_TICK_S)
                if published is None and not core.done:
                    yield b""  # still updating: the actor's sign that the learner lives
            if published is None:
                yield _done(core.version)
                continue
            answer = pb.PushResponse(
                accepted=int(accepted), dropped=int(not accepted), version=published.version
            )
            first, *rest = published.messages
            head = pb.ExchangeResponse(push=answer).SerializeToString()
            yield head + embedded_message(_WEIGHTS_FIELD, first)
            for message in rest:
                yield embedded_message(_WEIGHTS_FIELD, message)

    @rpc_errors
    async def GetStatus(  # noqa: N802 - gRPC method name
        self, request: pb.StatusRequest, context: Context
    ) -> pb.StatusResponse:
        core = self.core
        mean = core.stats.mean_return()
        return pb.StatusResponse(
            version=core.version,
            env_steps=core.env_steps,
            incarnation=core.incarnation,
            live_actors=len(core.sessions),
            done=core.done,
            mode=core.dist.mode,
            queue_depth=core.queue_depth,
            episode_return_mean=mean,
            episodes=core.stats.episodes,
        )


def _done(version: int) -> bytes:
    """The Exchange answer that tells an actor training is over."""
    return pb.ExchangeResponse(push=pb.PushResponse(version=version, done=True)).SerializeToString()
