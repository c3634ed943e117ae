"""How a learner core reads its run's chunks: a single agent's or a team's.

The core is the same for both; this small part differs. It decodes a received
chunk (checked against the single-agent spaces, or the team's input layout),
splits the observation statistics a chunk carries into the core's parts (each
agent's observations, then the global state), joins the parts into what actors
adopt, and gives a learner without actors an empty batch for a shared update::

    chunks = chunk_format(parts, rollout_steps)
    chunk = chunks.decode(message)
    for part, delta in zip(chunks.parts, chunks.split(chunk.obs_stats)): part.merge(delta)
    learner.update(chunks.per_agent(batch_chunks))
"""

from __future__ import annotations

from collections.abc import Sequence

from fleetmind.core.batch import Trajectory, concat_trajectories
from fleetmind.core.normalizer import RunningMeanStd
from fleetmind.core.spaces import SpaceSpec
from fleetmind.rpc.generated import training_pb2 as pb
from fleetmind.rpc.team_codec import concat_stats, split_stats, stats_dim, team_chunk_from_pb
from fleetmind.rpc.training_codec import Chunk, chunk_from_pb, empty_trajectory
from fleetmind.runtime.parts import RunParts, team_layout


class ChunkFormat:
    """A single agent's chunks: one trajectory, statistics of the observation's shape."""

    team = False
    """Whether per-agent returns are kept and reported."""

    def __init__(
        self,
        parts: Sequence[RunningMeanStd | None],
        agents: tuple[str, ...],
        rollout_steps: int,
        spaces: tuple[SpaceSpec, SpaceSpec],
    ) -> None:
        self.parts = list(parts)
        """Each agent's observation statistics, then the global state's (None: not kept)."""
        self.agents = agents
        self.rollout_steps = rollout_steps
        self.spaces = spaces

    def decode(self, msg: pb.TrajectoryChunk) -> Chunk:
        """Check a received chunk against this run's contract and convert it."""
        return chunk_from_pb(msg, self.rollout_steps, *self.spaces)

    def split(self, stats: RunningMeanStd | None) -> list[RunningMeanStd | None]:
        """A chunk's statistics, one entry per part."""
        return [stats, *[None] * (len(self.parts) - 1)]

    def join(self) -> RunningMeanStd | None:
        """The statistics actors adopt."""
        return self.parts[0]

    def per_agent(self, chunks: Sequence[Chunk]) -> list[Trajectory]:
        """One ``[T, sum E]`` trajectory per agent, over ``chunks``."""
        return [concat_trajectories([c.trajectory for c in chunks])]

    def empty(self) -> list[Trajectory]:
        """What a learner without actors contributes to a shared update."""
        return [empty_trajectory(self.rollout_steps, *self.spaces)]


class TeamChunkFormat(ChunkFormat):
    """A team's chunks: per-agent trajectories rebuilt with the team's input layout,
    one statistics vector for every part."""

    team = True

    def __init__(self, parts: RunParts, rollout_steps: int) -> None:
        stats, agents, spaces = _of(parts)
        super().__init__(stats, agents, rollout_steps, spaces)
        self.layout = team_layout(parts.learner)

    def decode(self, msg: pb.TrajectoryChunk) -> Chunk:
        """Check a team chunk against the team's layout and convert it."""
        return team_chunk_from_pb(msg, self.layout, self.rollout_steps, stats_dim(self.parts))

    def split(self, stats: RunningMeanStd | None) -> list[RunningMeanStd | None]:
        """The team statistics vector, one entry per part."""
        if stats is None:
            return [None] * len(self.parts)
        return split_stats(stats, self.parts)

    def join(self) -> RunningMeanStd | None:
        """Every part's statistics end to end."""
        return concat_stats(self.parts)

    def per_agent(self, chunks: Sequence[Chunk]) -> list[Trajectory]:
        """One ``[T, sum E]`` trajectory per agent, over ``chunks``."""
        return [concat_trajectories([c.agents[i] for c in chunks]) for i in range(len(self.agents))]

    def empty(self) -> list[Trajectory]:
        """Every agent's ``[T x 0]`` trajectory of its model inputs and actions."""
        layout = self.layout
        return [
            empty_trajectory(
                self.rollout_steps,
                SpaceSpec("box", (layout.actor_dims[i] + layout.critic_dim,), "float32"),
                action,
            )
            for i, action in enumerate(layout.spec.action_spaces)
        ]


def chunk_format(parts: RunParts, rollout_steps: int) -> ChunkFormat:
    """The chunk format of a run built from ``parts``."""
    if parts.team:
        return TeamChunkFormat(parts, rollout_steps)
    stats, agents, spaces = _of(parts)
    return ChunkFormat(stats, agents, rollout_steps, spaces)


def _of(
    parts: RunParts,
) -> tuple[list[RunningMeanStd | None], tuple[str, ...], tuple[SpaceSpec, SpaceSpec]]:
    """The statistics parts, agent names and first agent's spaces of a run."""
    spec = parts.spec
    spaces = (spec.observation_spaces[0], spec.action_spaces[0])
    return [*parts.obs_stats, parts.state_stats], spec.agents, spaces
