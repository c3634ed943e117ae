"""The parts of a training run, built in one place for every trainer and actor.

A run is an environment with an agent axis, a learner with the team interface,
observation statistics and the actuators that turn policy actions into env
actions. A single-agent algorithm on a Gymnasium env is a team of one; a team
algorithm (MAPPO, IPPO) on a multi-agent env is a team of N::

    parts = build_parts(env_id, spec, algo_config, envs=8, seed=1, normalize_obs=True)
    collector = parts.collector(rollout_steps, reward_gamma=None, seed=1)
    trajectories = collector.collect(parts.learner.rollout_policy())
    parts.learner.update(trajectories)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from fleetmind.algos.base import AlgoSpec
from fleetmind.algos.loading import actuator_for
from fleetmind.algos.team.base import MultiAgentAlgoSpec
from fleetmind.algos.team.nets import InputLayout
from fleetmind.algos.team_of_one import TeamOfOne
from fleetmind.core.agent import Actuator
from fleetmind.core.errors import ConfigError
from fleetmind.core.learning import TeamLearner
from fleetmind.core.normalizer import RunningMeanStd
from fleetmind.core.spaces import SpaceSpec
from fleetmind.envs.gym_team import GymTeamEnv
from fleetmind.envs.registry import make_team_vector_env, make_vector_env
from fleetmind.envs.spaces import observation_is_normalisable
from fleetmind.envs.team import MultiAgentSpec
from fleetmind.runtime.collector import Collector, TeamEnv

StatsFactory = Callable[[tuple[int, ...]], RunningMeanStd]
"""Builds the statistics of one observation shape (actors track their deltas)."""


def wants_stats(space: SpaceSpec | None, normalize_obs: bool) -> bool:
    """True when observations of ``space`` are standardised with running statistics."""
    return space is not None and normalize_obs and observation_is_normalisable(space)


@dataclass
class RunParts:
    """An environment, its learner and the statistics between them."""

    env: TeamEnv
    """``E`` copies with an agent axis."""
    learner: TeamLearner
    """The learner (a single-agent one behind :class:`TeamOfOne`)."""
    team: bool
    """True for a team algorithm: team checkpoints and per-agent reports."""
    obs_stats: list[RunningMeanStd | None]
    """Each agent's observation statistics (None: not normalised)."""
    state_stats: RunningMeanStd | None
    """The global state's statistics (teams whose env has a state)."""
    actuators: list[Actuator]
    """Per agent: policy actions to env actions."""

    @property
    def spec(self) -> MultiAgentSpec:
        """The agents and their spaces."""
        return self.env.spec

    def space_config(self) -> dict[str, Any]:
        """What config.json and checkpoints record of the spaces (``_team`` or ``_spaces``)."""
        if self.team:
            return {"_team": self.spec.to_json()}
        return {
            "_spaces": {
                "observation": self.spec.observation_spaces[0].to_json(),
                "action": self.spec.action_spaces[0].to_json(),
            }
        }

    def collector(self, rollout_steps: int, reward_gamma: float | None, seed: int) -> Collector:
        """A collector over these parts."""
        return Collector(
            self.env,
            rollout_steps,
            self.actuators,
            self.obs_stats,
            self.state_stats,
            layout=self.learner.layout,
            reward_gamma=reward_gamma,
            seed=seed,
        )


def build_parts(
    env_id: str,
    spec: AlgoSpec,
    algo_config: Any,
    *,
    envs: int,
    seed: int,
    normalize_obs: bool,
    stats: StatsFactory = RunningMeanStd,
    env_params: Mapping[str, Any] | None = None,
) -> RunParts:
    """The env, learner, statistics and actuators of ``spec`` on ``env_id``; ``env_params``
    picks a variant of a single-agent env (:mod:`fleetmind.envs.variants`)."""
    if isinstance(spec, MultiAgentAlgoSpec):
        if env_params:
            raise ConfigError(f"{spec.name} trains teams; environment parameters need one agent")
        env: TeamEnv = make_team_vector_env(env_id, envs)
        try:
            learner: TeamLearner = spec.build_team(algo_config, env.spec, seed)
        except BaseException:
            env.close()
            raise
    else:
        env = GymTeamEnv(make_vector_env(env_id, envs, env_params), env_id)
        act_space = env.spec.action_spaces[0]
        problem = spec.supports_action(act_space)
        try:
            if problem:
                raise ConfigError(f"{spec.name} cannot train {env_id}: {problem}")
            learner = TeamOfOne(
                spec.build(algo_config, env.spec.observation_spaces[0], act_space, seed)
            )
        except BaseException:
            env.close()
            raise
    team_spec = env.spec
    return RunParts(
        env=env,
        learner=learner,
        team=isinstance(spec, MultiAgentAlgoSpec),
        obs_stats=[
            stats(s.shape) if wants_stats(s, normalize_obs) else None
            for s in team_spec.observation_spaces
        ],
        state_stats=stats(team_spec.state_space.shape)
        if team_spec.state_space is not None and wants_stats(team_spec.state_space, normalize_obs)
        else None,
        actuators=[actuator_for(s) for s in team_spec.action_spaces],
    )


def broadcast_module(learner: TeamLearner) -> torch.nn.Module:
    """The network(s) the learner service broadcasts: a single agent's ``net``, or
    every network of a team as one module; ConfigError when there is none."""
    inner: Any = learner.learner if isinstance(learner, TeamOfOne) else learner
    networks = getattr(inner, "networks", None)
    module = networks() if callable(networks) else getattr(inner, "net", None)
    if not isinstance(module, torch.nn.Module):
        raise ConfigError(f"{type(inner).__name__} has no network to run in an actor")
    return module


def team_layout(learner: TeamLearner) -> InputLayout:
    """A team learner's input layout; ConfigError when a team chunk cannot describe it."""
    layout = learner.layout
    if not isinstance(layout, InputLayout):
        raise ConfigError(f"{type(learner).__name__} has an input layout actors cannot send")
    return layout
