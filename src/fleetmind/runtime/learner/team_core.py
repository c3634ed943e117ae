"""A learner service for a team: multi-agent chunks in, one team update per version.

``LearnerRun`` builds this team core for a multi-agent algorithm (``mappo``,
``ippo``). It is the single-agent learner loop with these parts swapped:

- chunks are team chunks (:mod:`fleetmind.rpc.team_codec`), checked
  against the team's layout;
- a sync update joins the chunks of every actor along the environment axis, per
  agent, into the ``[T, E * actors]`` trajectories the single-process multi-agent
  trainer updates on, so MAPPO and IPPO learn the same way;
- observation statistics are kept per agent and for the state, merged from the
  actors' deltas (Chan) and broadcast with the weights as one vector;
- reports add ``return_mean/<agent>``; checkpoints are the multi-agent ones, so
  ``fleetmind eval``, ``fleetmind.load`` and ``--resume`` work unchanged.
"""

from __future__ import annotations

from collections import deque
from typing import Any, cast

from fleetmind.algos.team.base import MultiAgentAlgoSpec, MultiAgentLearner
from fleetmind.algos.team.ppo import concat_trajectories
from fleetmind.core.batch import Trajectory
from fleetmind.core.errors import ConfigError
from fleetmind.core.normalizer import RunningMeanStd
from fleetmind.envs.registry import make_team_vector_env
from fleetmind.envs.team import MultiAgentSpec
from fleetmind.nn.threads import limit_threads
from fleetmind.rpc.generated import training_pb2 as pb
from fleetmind.rpc.team_codec import (
    TeamChunk,
    concat_stats,
    split_stats,
    stats_dim,
    team_chunk_from_pb,
    team_stats_shapes,
)
from fleetmind.rpc.training_codec import Chunk
from fleetmind.runtime.dist_config import DistConfig
from fleetmind.runtime.learner.collective import LearnerGroup
from fleetmind.runtime.learner.core import Batch, LearnerCore
from fleetmind.runtime.learner.run_setup import RunSetup
from fleetmind.runtime.learner.weight_store import PublishedWeights, WeightStore
from fleetmind.runtime.parts import broadcast_module, team_layout
from fleetmind.runtime.state import RunData, restore_run


class TeamLearnerCore(LearnerCore):
    """:class:`LearnerCore` for a team (see the module docstring)."""

    def __init__(
        self,
        learner: MultiAgentLearner,
        dist: DistConfig,
        env_id: str,
        rollout_steps: int,
        team: MultiAgentSpec,
        normalize_obs: bool,
    ) -> None:
        obs_shapes, state_shape = team_stats_shapes(team, normalize_obs)
        self.agent_obs_stats = [None if s is None else RunningMeanStd(s) for s in obs_shapes]
        self.state_stats = None if state_shape is None else RunningMeanStd(state_shape)
        self.team = team
        self.team_learner = learner
        self.layout = team_layout(learner)
        self.agent_returns: list[deque[float]] = [deque(maxlen=100) for _ in team.agents]
        """Per agent: returns of the latest finished episodes."""
        self._agent_batch: list[Trajectory] = []
        # The single-agent spaces are unused: team chunks are checked against the layout.
        spaces = (team.observation_spaces[0], team.action_spaces[0])
        super().__init__(
            cast(Any, learner), broadcast_module(learner), dist, env_id, rollout_steps, spaces,
            None, WeightStore(),
        )  # fmt: skip

    @property
    def agents(self) -> tuple[str, ...]:
        """Agent names in order."""
        return self.team.agents

    @property
    def _parts(self) -> list[RunningMeanStd | None]:
        return [*self.agent_obs_stats, self.state_stats]

    def run_data(self) -> RunData:
        """Counters, team and per-agent windows, every agent's statistics."""
        return RunData(
            env_steps=self.env_steps,
            stats=self.stats,
            agents=self.agents,
            obs_stats=self.agent_obs_stats,
            state_stats=self.state_stats,
            agent_returns=self.agent_returns,
        )

    def agent_return_means(self) -> dict[str, float | None]:
        """Mean return of the latest episodes, per agent name."""
        return {
            agent: sum(returns) / len(returns) if returns else None
            for agent, returns in zip(self.agents, self.agent_returns, strict=True)
        }

    def publish(self) -> PublishedWeights:
        """Serialise every network and the team statistics (once) for every actor."""
        return self.store.publish(self.version, self.module, concat_stats(self._parts))

    def decode_chunk(self, msg: pb.TrajectoryChunk) -> Chunk:
        """Check a team chunk against the team's layout and convert it."""
        layout = self.team_learner.layout
        return team_chunk_from_pb(
            msg, cast(Any, layout), self.rollout_steps, stats_dim(self._parts)
        )

    async def train_on(self, batch: Batch, stop: bool = False) -> dict[str, float]:
        """Merge statistics and per-agent returns, then update on every agent's batch."""
        chunks = [cast(TeamChunk, c) for c in batch.chunks]
        for chunk in chunks:
            if chunk.obs_stats is not None:
                deltas = split_stats(chunk.obs_stats, self._parts)
                for part, delta in zip(self._parts, deltas, strict=True):
                    if part is not None and delta is not None:
                        part.merge(delta)
            for returns in chunk.agent_returns:
                for window, value in zip(self.agent_returns, returns, strict=True):
                    window.append(value)
        self._agent_batch = [
            concat_trajectories([c.agents[i] for c in chunks]) for i in range(len(self.agents))
        ]
        return await super().train_on(batch, stop)

    def _update(self, trajectory: Any) -> dict[str, float]:
        metrics = self.team_learner.update(self._agent_batch)
        self._agent_batch = []
        self.publish()
        return metrics


def build_team_core(
    setup: RunSetup, dist: DistConfig, group: LearnerGroup | None = None
) -> tuple[LearnerCore, dict[str, Any]]:
    """The team learner and its statistics; restored when resuming (one learner: a
    team does not all-reduce across learners yet)."""
    cfg = setup.config
    spec = setup.spec
    if group is not None:
        raise ConfigError(f"--algo {spec.name} trains with one learner (--learners 1)")
    if not isinstance(spec, MultiAgentAlgoSpec):
        raise ConfigError(f"{spec.name} does not train a team")
    if dist.mode != "sync":
        raise ConfigError(
            f"--algo {spec.name} trains on-policy: use --mode sync with --actors (not {dist.mode})"
        )
    limit_threads(cfg.torch_threads)
    env = make_team_vector_env(cfg.env_id, 1)
    try:
        team = env.spec
    finally:
        env.close()
    learner = spec.build_team(setup.algo_config, team, cfg.seed)
    learner.total_env_steps = cfg.steps
    rollout = spec.rollout_length(setup.algo_config)
    core = TeamLearnerCore(learner, dist, cfg.env_id, rollout, team, cfg.normalize_obs)
    full = {**setup.full_config, "_team": team.to_json()}
    extra: dict[str, Any] = {}
    if setup.state is not None:
        extra = restore_run(setup.state, learner, core.run_data())
        core.env_steps = int(setup.state["env_steps"])
    core.publish()
    return core, {"full": full, "extra": extra}
