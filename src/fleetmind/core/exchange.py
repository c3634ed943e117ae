"""What actors and learners exchange, and the actor's view of a learner.

An actor talks to its learner through a :class:`LearnerClient`. Over the network
that client speaks gRPC (:mod:`fleetmind.rpc.learner_client`); in one process it
calls the learner directly (:mod:`fleetmind.runtime.learner.in_process`). Either
way the actor sees only these plain types::

    session = client.register("actor-0", env_id, num_envs=8, pid=os.getpid())
    weights, _ = client.weights(session, have_version=-1, wait_s=10)
    while not done:
        chunk = collect(policy_of(weights))           # Chunk: every agent's [T, E] data
        reply = client.push([chunk])                  # async mode: PushReply
        answer = stream.round(chunk)                  # sync mode: the next version back
        weights = answer.weights

A single agent is a team of one: its chunk holds one trajectory.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from fleetmind.core.batch import Trajectory
from fleetmind.core.normalizer import RunningMeanStd
from fleetmind.core.spaces import SpaceSpec

BUSY_STAGES = ("env", "inference", "rpc")
"""Stages of an actor's loop that add up to its busy time."""
STAGES = (*BUSY_STAGES, "push", "wait")
"""Every stage an actor reports: busy ones, its sender thread's push calls (overlapping
the loop) and the loop's wait for the next version."""


@dataclass(frozen=True)
class Episode:
    """One finished episode of a team (of one, for a single agent)."""

    team_return: float
    """Sum of the agents' returns."""
    length: int
    """Joint steps it lasted."""
    agent_returns: tuple[float, ...]
    """Each agent's return, in agent order."""


@dataclass
class Chunk:
    """``T`` steps of ``E`` environment copies, every agent, from one actor.

    ``trajectories[i].obs`` is agent ``i``'s own (normalised) observation; the
    learner builds each agent's model input from it and ``state`` with the
    algorithm's input layout, so the global state travels once per step.
    """

    trajectories: list[Trajectory]
    """One ``[T, E]`` trajectory per agent, in agent order (all of one policy version)."""
    state: np.ndarray | None = None
    """The global state ``[T, E, S]`` when a centralised critic reads it, else None."""
    obs_stats: RunningMeanStd | None = None
    """Statistics of the raw observations behind this chunk: every normalised part
    (each agent's observation, then the state) end to end, as one vector."""
    episodes: list[Episode] = field(default_factory=list)
    """Episodes that finished in this chunk."""
    times: dict[str, float] = field(default_factory=dict)
    """Actor seconds per stage (:data:`STAGES`) since its previous chunk."""
    session_id: str = ""
    """Session of the actor that sent it."""
    incarnation: int = 0
    """Learner incarnation the session belongs to."""
    session_secret: str = ""
    """The session's secret (:attr:`SessionInfo.session_secret`): proves the sender holds it."""
    raw_rewards: np.ndarray | None = None
    """Every agent's rewards before scaling, ``[T, E, N]`` (None: the rewards are not
    scaled, so ``trajectories[i].rewards`` are the raw ones)."""
    seq: int = 0
    """Index of this chunk in its session (0, 1, ...): the learner follows episodes
    across chunks and notices one that never arrived."""

    @property
    def policy_version(self) -> int:
        """Version of the policy that chose the actions."""
        return self.trajectories[0].policy_version

    @property
    def env_steps(self) -> int:
        """Joint environment steps it holds (``T * E``)."""
        return int(self.trajectories[0].rewards.size)


@dataclass(frozen=True)
class ChunkContract:
    """What a learner accepts: the shapes every chunk of its run must have."""

    agents: tuple[str, ...]
    """Agent names, in order."""
    rollout_steps: int
    """``T`` of every chunk."""
    obs_shapes: tuple[tuple[int, ...], ...]
    """Each agent's observation shape (after ``[T, E]``)."""
    action_spaces: tuple[SpaceSpec, ...]
    """Each agent's action space."""
    state_dim: int | None = None
    """Length of the global state a chunk carries (None: it carries none)."""
    stats_dim: int | None = None
    """Length of the statistics vector (None: no observation is normalised)."""


@dataclass
class Weights:
    """One policy version: the network's tensors and the statistics to normalise with."""

    version: int
    """Updates applied."""
    tensors: dict[str, np.ndarray]
    """The network's ``state_dict`` as arrays, by name (shared by every reader: never
    write to them)."""
    obs_stats: RunningMeanStd | None = None
    """The learner's merged observation statistics (the team vector), if any."""
    sha256: str = ""
    """Hex SHA-256 of the tensors laid end to end (equal on learners that agree)."""
    wire: Any = None
    """A transport's encoding of this version, made once (gRPC: the stream's messages)."""


@dataclass(frozen=True)
class SessionInfo:
    """A learner's answer to registering: the session and how to collect for it."""

    session_id: str
    """Id of the session."""
    incarnation: int
    """Changes every time the learner (re)starts."""
    version: int
    """Current policy version."""
    algo: str
    """Algorithm name."""
    algo_config: dict[str, Any]
    """The algorithm's config."""
    train_config: dict[str, Any]
    """The run's train config."""
    rollout_steps: int
    """``T`` of every chunk."""
    seed: int
    """Environment seed of this actor."""
    mode: str
    """``sync`` or ``async``."""
    session_secret: str = field(repr=False)
    """Proof of holding the session: every later call of the session carries it (a live
    session's id without it is refused, and the session goes on undisturbed). Never log it."""


@dataclass(frozen=True)
class PushReply:
    """A learner's answer to a push or a heartbeat."""

    version: int
    """Its current policy version."""
    done: bool = False
    """Training has finished: the actor should exit."""
    accepted: int = 0
    """Chunks taken."""
    dropped: int = 0
    """Chunks dropped as stale."""


@dataclass(frozen=True)
class ExchangeAnswer:
    """What a sync-mode exchange brings back for one chunk."""

    reply: PushReply
    """Whether the chunk was taken, and whether training is done."""
    weights: Weights | None
    """The next version (None when training is done)."""
    first_byte_at: float
    """``time.monotonic()`` when the answer began to arrive (the end of the wait)."""


class ExchangeStream(Protocol):
    """One session's sync-mode stream: each chunk is answered by the next version."""

    def round(self, chunk: Chunk) -> ExchangeAnswer:
        """Send ``chunk``; wait for the version that answers it."""
        ...

    def cancel_if_idle(self, idle_s: float) -> bool:
        """Cancel when an answer is awaited and nothing arrived for ``idle_s`` (True)."""
        ...

    @property
    def age_s(self) -> float:
        """Seconds since the stream opened."""
        ...

    def close(self) -> None:
        """End the stream."""
        ...


class LearnerClient(Protocol):
    """What an actor needs from its learner. Every call has a deadline; failures are
    fleetmind errors (``UnavailableError``: unreachable; ``PreconditionError``: the
    learner no longer knows the session; ``OverloadedError``: its queue is full;
    ``PermissionDeniedError``: the session's secret was wrong, which an honest actor
    never sees)."""

    def register(self, actor_id: str, env_id: str, num_envs: int, pid: int) -> SessionInfo:
        """Open a session."""
        ...

    def heartbeat(self, session: SessionInfo) -> PushReply:
        """Say the actor is alive; learn the version and whether training is done."""
        ...

    def push(self, chunks: Iterable[Chunk]) -> PushReply:
        """Hand over chunks (async mode)."""
        ...

    def weights(
        self, session: SessionInfo, have_version: int, wait_s: float
    ) -> tuple[Weights | None, float]:
        """A version newer than ``have_version`` (None when none came within ``wait_s``)
        and the ``time.monotonic()`` when it began to arrive."""
        ...

    def exchange(self) -> ExchangeStream:
        """Open a sync-mode exchange stream."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


@dataclass(frozen=True)
class LearnerStatus:
    """A learner's progress, as ``fleetmind status`` shows it."""

    version: int
    env_steps: int
    incarnation: int
    live_actors: int
    done: bool
    mode: str
    queue_depth: int
    episode_return_mean: float
    episodes: int
    insecure: bool = False
    """The learner is open to the network: no token, no mutual TLS (``--insecure``)."""


class LearnerEndpoint(Protocol):
    """The learner as a transport serves it (on the learner's event loop)."""

    contract: ChunkContract
    """What every chunk must look like (a transport checks received data against it)."""

    @property
    def version(self) -> int:
        """Current policy version."""
        ...

    @property
    def done(self) -> bool:
        """Training has finished."""
        ...

    def register(self, actor_id: str, env_id: str, num_envs: int, pid: int) -> SessionInfo:
        """A new session for an actor."""
        ...

    def heartbeat(self, session_id: str, incarnation: int, secret: str) -> PushReply:
        """An actor is alive."""
        ...

    def take(self, chunk: Chunk) -> bool | None:
        """Take a checked chunk: accepted (True) or stale (False); None when training
        is done (the session ends)."""
        ...

    def check_session(self, session_id: str, incarnation: int, secret: str) -> None:
        """PreconditionError for a session this learner does not know; PermissionDeniedError
        for a live one whose ``secret`` is wrong."""
        ...

    async def wait_for_version(self, have: int, wait_s: float) -> Weights | None:
        """The latest version if newer than ``have``; waits up to ``wait_s``."""
        ...

    def set_weights_encoder(self, encode: Any) -> None:
        """Encode every published version once with ``encode(weights)`` (into ``wire``)."""
        ...

    def status(self) -> LearnerStatus:
        """Progress."""
        ...
