"""The learner as its transports serve it: sessions, chunks and versions in plain types.

The gRPC servicer (:mod:`fleetmind.rpc.learner_service`) and the in-process client
(:mod:`fleetmind.runtime.learner.in_process`) both call this one object, so what an
actor is told does not depend on how it reached the learner. Its methods run on the
learner's event loop::

    info = endpoint.register(actor_id, env_id, num_envs, pid)   # SessionInfo, with its secret
    endpoint.heartbeat(info.session_id, info.incarnation, info.session_secret)
    endpoint.take(chunk)                      # True: accepted, False: stale, None: done
    weights = await endpoint.wait_for_version(have, wait_s)

Every call after registering names its session and carries the session's secret; a
live session's id without it is refused (PermissionDeniedError) and the session goes on
as it was, so knowing an actor's name or its session id is not enough to end it.
"""

from __future__ import annotations

from typing import Any

from fleetmind.core.errors import PreconditionError
from fleetmind.core.exchange import (
    Chunk,
    ChunkContract,
    LearnerStatus,
    PushReply,
    SessionInfo,
    Weights,
)
from fleetmind.runtime.learner.core import LearnerCore
from fleetmind.runtime.learner.weight_store import Encoder


class CoreEndpoint:
    """:class:`~fleetmind.core.exchange.LearnerEndpoint` over a :class:`LearnerCore`."""

    def __init__(
        self,
        core: LearnerCore,
        algo: str,
        algo_config: dict[str, Any],
        train_config: dict[str, Any],
        insecure: bool = False,
    ) -> None:
        self.core = core
        self.insecure = insecure
        """Its transport is open to the network (``--insecure``): status says so."""
        self.algo = algo
        self.algo_config = algo_config
        self.train_config = train_config
        self.seed = int(train_config.get("seed", 1))
        self.contract: ChunkContract = core.chunks.contract
        self._registrations = 0

    @property
    def version(self) -> int:
        """Current policy version."""
        return self.core.version

    @property
    def done(self) -> bool:
        """Training has finished."""
        return self.core.done

    def register(self, actor_id: str, env_id: str, num_envs: int, pid: int) -> SessionInfo:
        """A new session, with what the actor needs to collect for it.

        The first actor of a fresh run seeds its environments with the run's seed, as
        one process would; later ones (and every actor of a resumed run) get seeds of
        their own.
        """
        core = self.core
        session = core.register(actor_id, env_id, num_envs)
        self._registrations += 1
        return SessionInfo(
            session_id=session.session_id,
            incarnation=core.incarnation,
            version=core.version,
            algo=self.algo,
            algo_config=self.algo_config,
            train_config=self.train_config,
            rollout_steps=core.rollout_steps,
            seed=self.seed + 1009 * (self._registrations - 1) + 7919 * core.env_steps,
            mode=core.dist.mode,
            session_secret=session.secret,
        )

    def heartbeat(self, session_id: str, incarnation: int, secret: str) -> PushReply:
        """An actor is alive; once training is done its session ends (it was told)."""
        core = self.core
        if core.done:
            core.end(session_id, secret)
        else:
            core.touch(session_id, incarnation, secret)
        return PushReply(version=core.version, done=core.done)

    def take(self, chunk: Chunk) -> bool | None:
        """Hand a checked chunk to the core: accepted or stale; None when training is done
        (the answer says so; the actor will exit, so its session ends here)."""
        core = self.core
        if core.done:
            core.end(chunk.session_id, chunk.session_secret)
            return None
        session = core.touch(chunk.session_id, chunk.incarnation, chunk.session_secret)
        return core.accept(session, chunk)

    def check_session(self, session_id: str, incarnation: int, secret: str) -> None:
        """PreconditionError for a session this learner does not know; PermissionDeniedError
        for a live one whose ``secret`` is wrong."""
        self.core.touch(session_id, incarnation, secret)

    async def wait_for_version(self, have: int, wait_s: float) -> Weights | None:
        """The latest version if newer than ``have``; waits up to ``wait_s``."""
        return await self.core.wait_for_version(have, wait_s)

    def set_weights_encoder(self, encode: Encoder) -> None:
        """Encode every published version once (the transport's wire form)."""
        store = self.core.store
        if store is None:
            raise PreconditionError("this learner publishes no versions: its actors share it")
        store.set_encoder(encode)

    def status(self) -> LearnerStatus:
        """Progress, as ``fleetmind status`` shows it."""
        core = self.core
        return LearnerStatus(
            version=core.version,
            env_steps=core.env_steps,
            incarnation=core.incarnation,
            live_actors=len(core.sessions),
            done=core.done,
            mode=core.dist.mode,
            queue_depth=core.queue_depth,
            episode_return_mean=core.stats.mean_return(),
            episodes=core.stats.episodes,
            insecure=self.insecure,
        )
