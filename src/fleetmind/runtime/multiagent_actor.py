"""The experience source of a multi-agent actor: a team's vector env and policy copy.

:class:`fleetmind.runtime.actor.ActorWorker` picks it when the learner trains a
multi-agent algorithm (``mappo``, ``ippo``). The actor holds every network of the
team, critics included, so the values (for MAPPO, of the centralised critic on the
global state) are computed where the data is, exactly as in single-process
training; the learner broadcasts all networks as one module::

    source = TeamSource(session, envs)        # builds the team, env copies, statistics
    inference_s = source.collect(version)     # T steps of E copies, every agent
    msg = source.message(session_id, incarnation, times)  # one team chunk
    ... load weights into source.module; source.adopt(merged statistics)
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from fleetmind.algos.loading import actuator_for
from fleetmind.algos.multiagent_base import MultiAgentAlgoSpec, MultiAgentLearner, TeamRolloutPolicy
from fleetmind.algos.multiagent_nets import InputLayout
from fleetmind.algos.registry import get_algorithm
from fleetmind.config import config_from_mapping
from fleetmind.core.batch import Trajectory
from fleetmind.core.errors import ConfigError, PreconditionError
from fleetmind.core.learning import StepOutput
from fleetmind.core.normalizer import RunningMeanStd
from fleetmind.envs.registry import make_team_vector_env
from fleetmind.rpc.generated import training_pb2 as pb
from fleetmind.runtime.actor_source import TrackingStats
from fleetmind.runtime.multiagent_collector import MultiAgentCollector
from fleetmind.runtime.multiagent_wire import (
    TeamEpisode,
    concat_stats,
    split_stats,
    team_chunk_pb,
    team_stats_shapes,
)


def team_module(learner: MultiAgentLearner) -> torch.nn.Module:
    """Every network of ``learner`` as one module; ConfigError when it has none."""
    networks = getattr(learner, "networks", None)
    module = networks() if callable(networks) else None
    if not isinstance(module, torch.nn.Module):
        raise ConfigError(f"{type(learner).__name__} has no networks to broadcast to actors")
    return module


def team_layout(learner: MultiAgentLearner) -> InputLayout:
    """The learner's input layout; ConfigError when a team chunk cannot describe it."""
    layout = learner.layout
    if not isinstance(layout, InputLayout):
        raise ConfigError(f"{type(learner).__name__} has an input layout actors cannot send")
    return layout


class TimedTeamPolicy:
    """Wraps a team policy and sums the seconds spent in it."""

    def __init__(self, policy: TeamRolloutPolicy) -> None:
        self.policy = policy
        self.seconds = 0.0

    def step(self, model_inputs: Sequence[np.ndarray]) -> list[StepOutput]:
        """Forward to the policy, timed."""
        t = time.monotonic()
        out = self.policy.step(model_inputs)
        self.seconds += time.monotonic() - t
        return out


class TeamSource:
    """A multi-agent vector env stepped by a CPU copy of every agent's network."""

    def __init__(self, session: pb.RegisterResponse, envs: int) -> None:
        train = json.loads(session.train_config)
        spec = get_algorithm(session.algo)
        if not isinstance(spec, MultiAgentAlgoSpec):
            raise PreconditionError(f"algorithm {session.algo} does not train a team")
        algo_cfg: Any = config_from_mapping(
            spec.config_cls, json.loads(session.algo_config), spec.name
        )
        env = make_team_vector_env(train["env_id"], envs)
        try:
            team = env.spec
            learner = spec.build_team(algo_cfg, team, int(session.seed))
            self.module = team_module(learner)
            self.layout = team_layout(learner)
        except BaseException:
            env.close()
            raise
        self.policy = TimedTeamPolicy(learner.rollout_policy())
        obs_shapes, state_shape = team_stats_shapes(team, bool(train.get("normalize_obs", True)))
        self.obs_stats = [None if s is None else TrackingStats(s) for s in obs_shapes]
        self.state_stats = None if state_shape is None else TrackingStats(state_shape)
        self.collector = MultiAgentCollector(
            env,
            self.layout,
            int(session.rollout_steps),
            [actuator_for(s) for s in team.action_spaces],
            self.obs_stats,
            self.state_stats,
            seed=int(session.seed),
        )
        self._trajectories: list[Trajectory] | None = None
        self._episodes_seen = 0

    @property
    def _parts(self) -> list[TrackingStats | None]:
        return [*self.obs_stats, self.state_stats]

    def collect(self, version: int) -> float:
        """Collect ``T`` steps of every env copy for every agent."""
        before = self.policy.seconds
        self._trajectories = self.collector.collect(self.policy, version)
        return self.policy.seconds - before

    def message(
        self, session_id: str, incarnation: int, times: dict[str, float]
    ) -> pb.TrajectoryChunk:
        """The collected trajectories as one team chunk."""
        if self._trajectories is None:
            raise PreconditionError("message() needs collected trajectories")
        deltas = [None if p is None else p.take_delta() for p in self._parts]
        return team_chunk_pb(
            self._trajectories,
            self.layout,
            session_id,
            incarnation,
            concat_stats(deltas),
            self._new_episodes(),
            times,
        )

    def _new_episodes(self) -> list[TeamEpisode]:
        stats = self.collector.stats
        new = min(stats.episodes - self._episodes_seen, len(stats.returns))
        self._episodes_seen = stats.episodes
        if new <= 0:
            return []
        per_agent = [list(r)[-new:] for r in self.collector.agent_returns]
        rows = zip(list(stats.returns)[-new:], list(stats.lengths)[-new:], strict=True)
        return [
            TeamEpisode(ret, length, tuple(agent[k] for agent in per_agent))
            for k, (ret, length) in enumerate(rows)
        ]

    def adopt(self, stats: RunningMeanStd | None) -> None:
        """Normalise with the learner's merged statistics plus the unsent deltas."""
        if stats is None:
            return
        for part, merged in zip(self._parts, split_stats(stats, self._parts), strict=True):
            if part is not None and merged is not None:
                part.adopt(merged)

    def discard_delta(self) -> None:
        """Drop the unsent deltas."""
        for part in self._parts:
            if part is not None:
                part.take_delta()

    def close(self) -> None:
        """Close the environments."""
        self.collector.env.close()
