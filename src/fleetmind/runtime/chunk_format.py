"""How a run's chunks are built and read: the one place a team's input layout shows.

A chunk carries each agent's own observation (and the global state once per step);
the networks train on model inputs that the algorithm's input layout builds from
them. A single agent's model input is its observation, so its chunk is a team of
one with nothing to split or rebuild. The format also splits the observation
statistics a chunk carries into the run's parts (each agent's observations, then
the global state) and joins them into what actors adopt::

    chunks = chunk_format(parts, rollout_steps)
    own_obs, state = chunks.split_inputs(trajectories)        # actor, before sending
    for part, delta in zip(chunks.parts, chunks.split(chunk.obs_stats)): part.merge(delta)
    learner.update(chunks.per_agent(batch_chunks))             # learner: model inputs
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from fleetmind.algos.team.nets import InputLayout
from fleetmind.core.batch import Trajectory, concat_trajectories
from fleetmind.core.exchange import Chunk, ChunkContract
from fleetmind.core.normalizer import RunningMeanStd, concat_stats, split_stats, stats_dim
from fleetmind.core.spaces import SpaceSpec
from fleetmind.runtime.parts import RunParts, team_layout


class ChunkFormat:
    """The chunks of one run: their contract, statistics parts and model inputs."""

    def __init__(self, parts: RunParts, rollout_steps: int) -> None:
        spec = parts.spec
        self.team = parts.team
        """Whether per-agent returns are kept and reported."""
        self.layout: InputLayout | None = team_layout(parts.learner) if parts.team else None
        """How model inputs are built from observations (None: each agent's observation)."""
        self.parts: list[RunningMeanStd | None] = [*parts.obs_stats, parts.state_stats]
        """Each agent's observation statistics, then the global state's (None: not kept)."""
        self.agents = spec.agents
        self.rollout_steps = rollout_steps
        layout = self.layout
        if layout is None:
            obs_shapes = tuple(tuple(s.shape) for s in spec.observation_spaces)
            state_dim = None
        else:
            obs_shapes = tuple((s.flat_dim,) for s in spec.observation_spaces)
            reads = layout.reads_state and spec.state_space is not None
            state_dim = spec.state_space.flat_dim if reads and spec.state_space else None
        self.contract = ChunkContract(
            spec.agents,
            rollout_steps,
            obs_shapes,
            tuple(spec.action_spaces),
            state_dim,
            stats_dim(self.parts),
        )
        """What every chunk of this run must look like."""

    def split_inputs(
        self, trajectories: Sequence[Trajectory]
    ) -> tuple[list[Trajectory], np.ndarray | None]:
        """Trajectories of model inputs -> each agent's own observations and the state."""
        if self.layout is None:
            return list(trajectories), None
        obs, state = self.layout.split([t.obs for t in trajectories])
        own = [
            replace(t, obs=np.ascontiguousarray(o)) for t, o in zip(trajectories, obs, strict=True)
        ]
        return own, None if state is None else np.ascontiguousarray(state)

    def model_inputs(self, chunk: Chunk) -> list[Trajectory]:
        """A chunk's trajectories with each agent's model input as ``obs``."""
        layout = self.layout
        if layout is None:
            return chunk.trajectories
        first = chunk.trajectories[0]
        steps, envs = first.num_steps, first.num_envs
        flat_obs = [t.obs.reshape(steps * envs, -1) for t in chunk.trajectories]
        state = chunk.state
        flat_state = None if state is None else state.reshape(steps * envs, -1)
        return [
            replace(t, obs=layout.model_input(i, flat_obs, flat_state).reshape(steps, envs, -1))
            for i, t in enumerate(chunk.trajectories)
        ]

    def split(self, stats: RunningMeanStd | None) -> list[RunningMeanStd | None]:
        """A chunk's statistics vector, one entry per part."""
        if stats is None:
            return [None] * len(self.parts)
        return split_stats(stats, self.parts)

    def join(self) -> RunningMeanStd | None:
        """Every part's statistics end to end: what actors adopt."""
        return concat_stats(self.parts)

    def per_agent(self, chunks: Sequence[Chunk]) -> list[Trajectory]:
        """One ``[T, sum E]`` trajectory of model inputs per agent, over ``chunks``."""
        inputs = [self.model_inputs(c) for c in chunks]
        if len(inputs) == 1:
            return inputs[0]
        return [concat_trajectories([c[i] for c in inputs]) for i in range(len(self.agents))]

    def empty(self) -> list[Trajectory]:
        """What a learner without actors contributes to a shared update: every agent's
        ``[T x 0]`` trajectory of model inputs and actions."""
        layout = self.layout
        shapes = self.contract.obs_shapes
        if layout is not None:
            shapes = tuple((d + layout.critic_dim,) for d in layout.actor_dims)
        return [
            empty_trajectory(self.rollout_steps, shape, action)
            for shape, action in zip(shapes, self.contract.action_spaces, strict=True)
        ]


def chunk_format(parts: RunParts, rollout_steps: int) -> ChunkFormat:
    """The chunk format of a run built from ``parts``."""
    return ChunkFormat(parts, rollout_steps)


def empty_trajectory(steps: int, obs_shape: tuple[int, ...], action: SpaceSpec) -> Trajectory:
    """A ``[T x 0]`` trajectory of ``obs_shape`` observations and ``action`` actions."""
    act_shape = () if action.kind == "discrete" else (action.flat_dim,)
    act_dtype = np.int64 if action.kind == "discrete" else np.float32
    floats = np.zeros((steps, 0), np.float32)
    flags = np.zeros((steps, 0), bool)
    return Trajectory(
        obs=np.zeros((steps, 0, *obs_shape), np.float32),
        actions=np.zeros((steps, 0, *act_shape), act_dtype),
        log_probs=floats,
        values=floats,
        rewards=floats,
        next_values=floats,
        terminated=flags,
        truncated=flags,
        valid=flags,
    )
