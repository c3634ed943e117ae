"""Trajectory chunks and normaliser statistics <-> training messages, checked.

One format for teams of any size (a single agent is a team of one). A chunk
(``num_agents = N``) carries each agent's normalised observation (``obs/<i>``,
``[T x E x *obs_i]``) and action (``actions/<i>``), the global ``state``
(``[T x E x S]``) when the learner's centralised critic reads it, and the per-agent
scalars stacked on an agent axis (``log_probs``, ``values``, ``rewards``,
``next_values``, ``terminated``, ``truncated``, ``valid`` and, optionally,
``decision``: ``[T x E x N]``), the optional ``raw_rewards`` ``[T x E x N]`` (the
rewards before scaling) and its index in the session (``seq``).

Everything an actor sends is checked here against the learner's
:class:`~fleetmind.core.exchange.ChunkContract` before the learner touches it: the
agent count, names, datatypes and shapes of every tensor, finite numbers, action
ranges (naming the agent), lengths that agree. A bad chunk raises
:class:`InvalidInputError` (``INVALID_ARGUMENT``) with a message that says what to fix.
"""

from __future__ import annotations

import numpy as np

from fleetmind.core.batch import Trajectory
from fleetmind.core.errors import InvalidInputError, echo
from fleetmind.core.exchange import STAGES, Chunk, ChunkContract, Episode
from fleetmind.core.normalizer import RunningMeanStd
from fleetmind.rpc.codec import decode_tensor, encode_tensor
from fleetmind.rpc.generated import training_pb2 as pb

MAX_ENVS_PER_CHUNK = 65_536
"""Upper bound on ``E`` in one chunk (the message-size limit usually binds first)."""

STACKED_FLOAT = ("log_probs", "values", "rewards", "next_values")
STACKED_BOOL = ("terminated", "truncated", "valid")
DECISION_FIELD = "decision"
"""The optional ``[T x E x N]`` BOOL tensor of the steps whose action was a real choice."""
RAW_REWARDS_FIELD = "raw_rewards"
"""The optional ``[T x E x N]`` FP32 tensor of the rewards before scaling."""


def tensor_pb(array: np.ndarray, name: str) -> pb.Tensor:
    """One protobuf tensor from a numpy array."""
    datatype, shape, raw = encode_tensor(array, name)
    return pb.Tensor(name=name, datatype=datatype, shape=shape, raw=raw)


def tensor_np(tensor: pb.Tensor, name: str | None = None) -> np.ndarray:
    """The read-only numpy view of a protobuf tensor."""
    return decode_tensor(tensor.raw, tensor.datatype, tensor.shape, name or tensor.name)


def stats_pb(stats: RunningMeanStd) -> pb.NormStats:
    """Normaliser statistics as a message (float64 mean and variance)."""
    return pb.NormStats(
        mean=tensor_pb(np.asarray(stats.mean, np.float64), "mean"),
        var=tensor_pb(np.asarray(stats.var, np.float64), "var"),
        count=float(stats.count),
    )


def stats_np(msg: pb.NormStats, shape: tuple[int, ...], where: str) -> RunningMeanStd:
    """Checked statistics from a message: shape, finiteness, non-negative var and count."""
    mean = np.array(tensor_np(msg.mean, f"{where}.mean"), dtype=np.float64)
    var = np.array(tensor_np(msg.var, f"{where}.var"), dtype=np.float64)
    if mean.shape != shape or var.shape != shape:
        raise InvalidInputError(
            f"{where}: mean {list(mean.shape)} and var {list(var.shape)} must both have the "
            f"shape {list(shape)}"
        )
    count = float(msg.count)
    finite = np.all(np.isfinite(mean)) and np.all(np.isfinite(var)) and np.isfinite(count)
    if not finite or np.any(var < 0) or count < 0:
        raise InvalidInputError(f"{where}: statistics must be finite with var >= 0, count >= 0")
    return RunningMeanStd(shape, mean, var, count)


def chunk_pb(chunk: Chunk) -> pb.TrajectoryChunk:
    """The message for one chunk."""
    trajectories = chunk.trajectories
    first = trajectories[0]
    tensors = [tensor_pb(t.obs, f"obs/{i}") for i, t in enumerate(trajectories)]
    tensors += [tensor_pb(t.actions, f"actions/{i}") for i, t in enumerate(trajectories)]
    if chunk.state is not None:
        tensors.append(tensor_pb(chunk.state, "state"))
    for name in (*STACKED_FLOAT, *STACKED_BOOL):
        tensors.append(tensor_pb(np.stack([getattr(t, name) for t in trajectories], -1), name))
    if any(t.decision is not None for t in trajectories):
        decision = [t.valid if t.decision is None else t.decision for t in trajectories]
        tensors.append(tensor_pb(np.stack(decision, -1), DECISION_FIELD))
    if chunk.raw_rewards is not None:
        tensors.append(tensor_pb(chunk.raw_rewards, RAW_REWARDS_FIELD))
    episodes = chunk.episodes
    msg = pb.TrajectoryChunk(
        session_id=chunk.session_id,
        incarnation=chunk.incarnation,
        session_secret=chunk.session_secret,
        policy_version=first.policy_version,
        num_steps=first.num_steps,
        num_envs=first.num_envs,
        tensors=tensors,
        episode_returns=[e.team_return for e in episodes],
        episode_lengths=[e.length for e in episodes],
        agent_episode_returns=[r for e in episodes for r in e.agent_returns],
        times=pb.StageTimes(**{k: v for k, v in chunk.times.items() if k in STAGES}),
        env_steps=first.num_steps * first.num_envs,
        num_agents=len(trajectories),
        seq=chunk.seq,
    )
    if chunk.obs_stats is not None:
        msg.obs_stats.CopyFrom(stats_pb(chunk.obs_stats))
    return msg


def expected_tensors(
    contract: ChunkContract, steps: int, envs: int
) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Datatype and shape of every tensor of a chunk, by name."""
    lead = (steps, envs)
    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    for i, shape in enumerate(contract.obs_shapes):
        out[f"obs/{i}"] = ("FP32", (*lead, *shape))
    for i, space in enumerate(contract.action_spaces):
        out[f"actions/{i}"] = (
            ("INT64", lead) if space.kind == "discrete" else ("FP32", (*lead, space.flat_dim))
        )
    if contract.state_dim is not None:
        out["state"] = ("FP32", (*lead, contract.state_dim))
    agents = len(contract.agents)
    out.update({name: ("FP32", (*lead, agents)) for name in STACKED_FLOAT})
    out.update({name: ("BOOL", (*lead, agents)) for name in STACKED_BOOL})
    return out


def decode_tensors(
    msg: pb.TrajectoryChunk,
    wanted: dict[str, tuple[str, tuple[int, ...]]],
    context: str,
) -> dict[str, np.ndarray]:
    """The chunk's tensors as writable arrays: exactly the names of ``wanted``, each
    once, with its ``(datatype, shape)``; InvalidInputError naming the first that is
    not (``context`` names the sizes the shapes follow from)."""
    given = {t.name: t for t in msg.tensors}
    if len(given) != len(msg.tensors) or set(given) != set(wanted):
        raise InvalidInputError(
            f"chunk tensors {echo([t.name for t in msg.tensors])} must be exactly "
            f"{list(wanted)}, each once"
        )
    arrays: dict[str, np.ndarray] = {}
    for name, (datatype, shape) in wanted.items():
        tensor = given[name]
        if tensor.datatype != datatype or tuple(tensor.shape) != shape:
            given_type = echo(tensor.datatype, bare=True) + echo(list(tensor.shape))
            raise InvalidInputError(
                f"tensor {name!r} is {given_type}; expected {datatype}{list(shape)} for {context}"
            )
        arrays[name] = np.array(tensor_np(tensor, name))
    return arrays


def _check_header(msg: pb.TrajectoryChunk, contract: ChunkContract) -> None:
    agents = contract.agents
    team = f"{len(agents)} agent{'s' if len(agents) > 1 else ''} ({', '.join(agents)})"
    if msg.num_agents == 0:
        raise InvalidInputError(
            f"num_agents=0 but this learner trains {team}; start the actor from the "
            "learner's fleetmind version, which sends one trajectory per agent"
        )
    if msg.num_agents != len(agents):
        raise InvalidInputError(
            f"num_agents={msg.num_agents} but this learner trains {team}; send one "
            "trajectory per agent, in that order"
        )
    if msg.num_steps != contract.rollout_steps:
        raise InvalidInputError(
            f"num_steps={msg.num_steps} but this learner trains on T={contract.rollout_steps}"
        )
    if not 0 < msg.num_envs <= MAX_ENVS_PER_CHUNK:
        raise InvalidInputError(f"num_envs={msg.num_envs} must lie in 1..{MAX_ENVS_PER_CHUNK}")
    if msg.env_steps != msg.num_steps * msg.num_envs:
        raise InvalidInputError(
            f"env_steps={msg.env_steps} disagrees with T*E={msg.num_steps * msg.num_envs}"
        )


def _arrays(msg: pb.TrajectoryChunk, contract: ChunkContract) -> dict[str, np.ndarray]:
    steps, envs = int(msg.num_steps), int(msg.num_envs)
    wanted = expected_tensors(contract, steps, envs)
    stacked = (steps, envs, len(contract.agents))
    if any(t.name == DECISION_FIELD for t in msg.tensors):
        wanted[DECISION_FIELD] = ("BOOL", stacked)
    if any(t.name == RAW_REWARDS_FIELD for t in msg.tensors):
        wanted[RAW_REWARDS_FIELD] = ("FP32", stacked)
    context = f"num_steps={steps}, num_envs={envs}, num_agents={msg.num_agents}"
    arrays = decode_tensors(msg, wanted, context)
    for name, (datatype, _shape) in wanted.items():
        if datatype == "FP32" and not np.all(np.isfinite(arrays[name])):
            raise InvalidInputError(f"tensor {name!r} holds NaN or infinite values")
    for i, (agent, space) in enumerate(zip(contract.agents, contract.action_spaces, strict=True)):
        actions = arrays[f"actions/{i}"]
        if space.kind == "discrete" and actions.size:
            low, high = int(actions.min()), int(actions.max())
            if low < 0 or high >= int(space.n or 0):
                raise InvalidInputError(
                    f"actions/{i} of agent {agent} must lie in [0, {space.n}); got {low}..{high}"
                )
    return arrays


def _episodes(msg: pb.TrajectoryChunk, agents: int) -> list[Episode]:
    episodes = len(msg.episode_returns)
    if len(msg.episode_lengths) != episodes:
        raise InvalidInputError(
            f"{episodes} episode returns but {len(msg.episode_lengths)} lengths"
        )
    if len(msg.agent_episode_returns) != episodes * agents:
        raise InvalidInputError(
            f"agent_episode_returns holds {len(msg.agent_episode_returns)} values; expected "
            f"{episodes} episodes x {agents} agents = {episodes * agents}"
        )
    returns = [float(r) for r in msg.episode_returns]
    per_agent = np.asarray(msg.agent_episode_returns, dtype=np.float64).reshape(episodes, agents)
    if not (np.all(np.isfinite(returns)) and np.all(np.isfinite(per_agent))):
        raise InvalidInputError("episode returns hold NaN or infinite values")
    lengths = [int(n) for n in msg.episode_lengths]
    return [
        Episode(ret, length, tuple(float(r) for r in row))
        for ret, length, row in zip(returns, lengths, per_agent, strict=True)
    ]


def chunk_from_pb(msg: pb.TrajectoryChunk, contract: ChunkContract) -> Chunk:
    """Check a received chunk against ``contract`` and convert it."""
    _check_header(msg, contract)
    arrays = _arrays(msg, contract)
    episodes = _episodes(msg, len(contract.agents))
    stats = None
    if msg.HasField("obs_stats"):
        if contract.stats_dim is None:
            raise InvalidInputError("obs_stats sent but this learner normalises no observation")
        stats = stats_np(msg.obs_stats, (contract.stats_dim,), "obs_stats")
    version = int(msg.policy_version)
    decision = arrays.get(DECISION_FIELD)
    trajectories = []
    for i in range(len(contract.agents)):
        parts = {
            n: np.ascontiguousarray(arrays[n][..., i]) for n in (*STACKED_FLOAT, *STACKED_BOOL)
        }
        trajectories.append(
            Trajectory(
                obs=arrays[f"obs/{i}"],
                actions=arrays[f"actions/{i}"],
                policy_version=version,
                decision=None if decision is None else np.ascontiguousarray(decision[..., i]),
                **parts,
            )
        )
    return Chunk(
        trajectories,
        arrays.get("state"),
        stats,
        episodes,
        stage_times(msg.times),
        session_id=msg.session_id,
        incarnation=int(msg.incarnation),
        session_secret=msg.session_secret,
        raw_rewards=arrays.get(RAW_REWARDS_FIELD),
        seq=int(msg.seq),
    )


def stage_times(msg: pb.StageTimes) -> dict[str, float]:
    """An actor's seconds per stage; negative or non-finite values count as 0."""
    values = {k: float(getattr(msg, k)) for k in STAGES}
    return {k: v if np.isfinite(v) and v > 0 else 0.0 for k, v in values.items()}
