"""Team trajectory chunks: one ``[T x E]`` trajectory per agent <-> one checked message.

A team chunk (``num_agents = N > 0``) carries each agent's normalised observation
(``obs/<i>``, ``[T x E x D_i]``) and action (``actions/<i>``), the global ``state``
(``[T x E x S]``) when the centralised critic reads it, and the per-agent scalars
stacked on an agent axis (``log_probs``, ``values``, ``rewards``, ``next_values``,
``terminated``, ``truncated``, ``valid``: ``[T x E x N]``). The model inputs the
networks train on are rebuilt on the learner with the algorithm's input layout, so
the state crosses the wire once per step instead of once per agent.

Everything is checked before the learner sees it, like single-agent chunks: the
agent count, names, datatypes and shapes of every tensor, finite numbers, action
ranges (naming the agent), lengths that agree. A bad chunk raises
:class:`InvalidInputError` (``INVALID_ARGUMENT``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fleetmind.algos.team.nets import InputLayout
from fleetmind.core.batch import Trajectory
from fleetmind.core.errors import InvalidInputError
from fleetmind.core.normalizer import RunningMeanStd
from fleetmind.rpc.generated import training_pb2 as pb
from fleetmind.rpc.training_codec import (
    MAX_ENVS_PER_CHUNK,
    Chunk,
    decode_tensors,
    stage_times,
    stats_np,
    stats_pb,
    tensor_pb,
)

STACKED_FLOAT = ("log_probs", "values", "rewards", "next_values")
STACKED_BOOL = ("terminated", "truncated", "valid")


@dataclass(frozen=True)
class TeamEpisode:
    """One finished episode of a team."""

    team_return: float
    """Sum of the agents' returns."""
    length: int
    """Joint steps it lasted."""
    agent_returns: tuple[float, ...]
    """Each agent's return, in agent order."""


def team_chunk_pb(
    trajectories: Sequence[Trajectory],
    layout: InputLayout,
    session_id: str,
    incarnation: int,
    obs_stats: RunningMeanStd | None,
    episodes: Sequence[TeamEpisode] = (),
    times: dict[str, float] | None = None,
) -> pb.TrajectoryChunk:
    """The message an actor sends for one trajectory per agent (``obs`` = model inputs)."""
    first = trajectories[0]
    obs, state = layout.split([t.obs for t in trajectories])
    tensors = [tensor_pb(o, f"obs/{i}") for i, o in enumerate(obs)]
    tensors += [tensor_pb(t.actions, f"actions/{i}") for i, t in enumerate(trajectories)]
    if state is not None:
        tensors.append(tensor_pb(state, "state"))
    for name in (*STACKED_FLOAT, *STACKED_BOOL):
        stacked = np.stack([getattr(t, name) for t in trajectories], axis=-1)
        tensors.append(tensor_pb(stacked, name))
    msg = pb.TrajectoryChunk(
        session_id=session_id,
        incarnation=incarnation,
        policy_version=first.policy_version,
        num_steps=first.num_steps,
        num_envs=first.num_envs,
        tensors=tensors,
        episode_returns=[e.team_return for e in episodes],
        episode_lengths=[e.length for e in episodes],
        agent_episode_returns=[r for e in episodes for r in e.agent_returns],
        times=pb.StageTimes(**(times or {})),
        env_steps=first.num_steps * first.num_envs,
        num_agents=len(trajectories),
    )
    if obs_stats is not None:
        msg.obs_stats.CopyFrom(stats_pb(obs_stats))
    return msg


def expected_tensors(
    layout: InputLayout, steps: int, envs: int
) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Datatype and shape of every tensor of a team chunk, by name."""
    spec = layout.spec
    lead = (steps, envs)
    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    for i, space in enumerate(spec.observation_spaces):
        out[f"obs/{i}"] = ("FP32", (*lead, space.flat_dim))
    for i, space in enumerate(spec.action_spaces):
        out[f"actions/{i}"] = (
            ("INT64", lead) if space.kind == "discrete" else ("FP32", (*lead, space.flat_dim))
        )
    if layout.reads_state and spec.state_space is not None:
        out["state"] = ("FP32", (*lead, spec.state_space.flat_dim))
    agents = len(spec.agents)
    out.update({name: ("FP32", (*lead, agents)) for name in STACKED_FLOAT})
    out.update({name: ("BOOL", (*lead, agents)) for name in STACKED_BOOL})
    return out


def _check_header(msg: pb.TrajectoryChunk, layout: InputLayout, rollout_steps: int) -> None:
    agents = layout.spec.agents
    if msg.num_agents == 0:
        raise InvalidInputError(
            f"a single-agent chunk (num_agents=0) but this learner trains a team of "
            f"{len(agents)} agents ({', '.join(agents)}); start the actor from the "
            "learner's fleetmind version, which sends team chunks"
        )
    if msg.num_agents != len(agents):
        raise InvalidInputError(
            f"num_agents={msg.num_agents} but this learner trains a team of {len(agents)} "
            f"agents ({', '.join(agents)}); send one trajectory per agent, in that order"
        )
    if msg.num_steps != rollout_steps:
        raise InvalidInputError(
            f"num_steps={msg.num_steps} but this learner trains on T={rollout_steps}"
        )
    if not 0 < msg.num_envs <= MAX_ENVS_PER_CHUNK:
        raise InvalidInputError(f"num_envs={msg.num_envs} must lie in 1..{MAX_ENVS_PER_CHUNK}")
    if msg.env_steps != msg.num_steps * msg.num_envs:
        raise InvalidInputError(
            f"env_steps={msg.env_steps} disagrees with T*E={msg.num_steps * msg.num_envs}"
        )


def _arrays(msg: pb.TrajectoryChunk, layout: InputLayout) -> dict[str, np.ndarray]:
    wanted = expected_tensors(layout, int(msg.num_steps), int(msg.num_envs))
    context = f"num_steps={msg.num_steps}, num_envs={msg.num_envs}, num_agents={msg.num_agents}"
    arrays = decode_tensors(msg, wanted, "team chunk", context)
    for name, (datatype, _shape) in wanted.items():
        if datatype == "FP32" and not np.all(np.isfinite(arrays[name])):
            raise InvalidInputError(f"tensor {name!r} holds NaN or infinite values")
    for i, (agent, space) in enumerate(
        zip(layout.spec.agents, layout.spec.action_spaces, strict=True)
    ):
        actions = arrays[f"actions/{i}"]
        if space.kind == "discrete" and actions.size:
            low, high = int(actions.min()), int(actions.max())
            if low < 0 or high >= int(space.n or 0):
                raise InvalidInputError(
                    f"actions/{i} of agent {agent} must lie in [0, {space.n}); got {low}..{high}"
                )
    return arrays


def _episodes(msg: pb.TrajectoryChunk, agents: int) -> tuple[list[float], list[list[float]]]:
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
    return returns, per_agent.tolist()


def team_chunk_from_pb(
    msg: pb.TrajectoryChunk, layout: InputLayout, rollout_steps: int, stats_dim: int | None
) -> Chunk:
    """Check a received team chunk against the contract and convert it.

    ``stats_dim`` is the length of the team's observation statistics vector (None when
    no observation is normalised).
    """
    _check_header(msg, layout, rollout_steps)
    arrays = _arrays(msg, layout)
    returns, agent_returns = _episodes(msg, len(layout.spec.agents))
    stats = None
    if msg.HasField("obs_stats"):
        if stats_dim is None:
            raise InvalidInputError("obs_stats sent but this learner normalises no observation")
        stats = stats_np(msg.obs_stats, (stats_dim,), "obs_stats")
    steps, envs = int(msg.num_steps), int(msg.num_envs)
    agents = len(layout.spec.agents)
    flat_obs = [arrays[f"obs/{i}"].reshape(steps * envs, -1) for i in range(agents)]
    state = arrays.get("state")
    flat_state = None if state is None else state.reshape(steps * envs, -1)
    version = int(msg.policy_version)
    trajectories = []
    for i in range(agents):
        model_input = layout.model_input(i, flat_obs, flat_state).reshape(steps, envs, -1)
        parts = {
            n: np.ascontiguousarray(arrays[n][..., i]) for n in (*STACKED_FLOAT, *STACKED_BOOL)
        }
        trajectories.append(
            Trajectory(
                obs=model_input, actions=arrays[f"actions/{i}"], policy_version=version, **parts
            )
        )
    times = stage_times(msg.times)
    lengths = [int(n) for n in msg.episode_lengths]
    return Chunk(
        trajectories[0], stats, returns, lengths, times, msg.session_id, trajectories, agent_returns
    )


def stats_dim(parts: Sequence[RunningMeanStd | None]) -> int | None:
    """Length of the team statistics vector of ``parts`` (None when all are None)."""
    dims = [int(np.prod(p.shape)) for p in parts if p is not None]
    return sum(dims) if dims else None


def concat_stats(parts: Sequence[RunningMeanStd | None]) -> RunningMeanStd | None:
    """The team statistics vector: every present part's mean and var end to end.

    The parts of one team see the same rows (one per env copy per step), so they
    share one count; the vector is exact under Chan's merge.
    """
    present = [p for p in parts if p is not None]
    if not present:
        return None
    mean = np.concatenate([np.asarray(p.mean, np.float64).reshape(-1) for p in present])
    var = np.concatenate([np.asarray(p.var, np.float64).reshape(-1) for p in present])
    return RunningMeanStd(mean.shape, mean, var, float(present[0].count))


def split_stats(
    merged: RunningMeanStd, parts: Sequence[RunningMeanStd | None]
) -> list[RunningMeanStd | None]:
    """Inverse of :func:`concat_stats`: one statistics object per present part."""
    total = stats_dim(parts) or 0
    if merged.mean.size != total:
        raise InvalidInputError(
            f"team statistics hold {merged.mean.size} values; this team normalises {total}"
        )
    out: list[RunningMeanStd | None] = []
    start = 0
    for part in parts:
        if part is None:
            out.append(None)
            continue
        size = int(np.prod(part.shape))
        mean = np.asarray(merged.mean[start : start + size]).reshape(part.shape)
        var = np.asarray(merged.var[start : start + size]).reshape(part.shape)
        out.append(RunningMeanStd(part.shape, mean.copy(), var.copy(), float(merged.count)))
        start += size
    return out
