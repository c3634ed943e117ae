"""The one collector, run on a team of one (a Gymnasium env) and a team of two."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from gymnasium import spaces
from pettingzoo import ParallelEnv

from fleetmind.core.errors import ConfigError, EnvironmentStepError
from fleetmind.core.learning import StepOutput
from fleetmind.core.normalizer import RunningMeanStd
from fleetmind.envs.gym_team import GymTeamEnv
from fleetmind.envs.registry import make_vector_env
from fleetmind.envs.team import MultiAgentVectorEnv
from fleetmind.runtime.collector import Collector, TeamEnv


class CountdownTeam(ParallelEnv):  # type: ignore[misc]
    """Two agents counting down together: observation = steps left, reward 1 each per
    step, both terminate after ``length`` steps (the team twin of tests' Countdown)."""

    metadata = {"name": "countdown_team_v0"}  # noqa: RUF012

    def __init__(self, length: int = 3, nan_at: int | None = None) -> None:
        self.possible_agents = ["a", "b"]
        self.agents: list[str] = []
        self.length, self.nan_at, self.t = length, nan_at, 0

    def observation_space(self, agent: str) -> spaces.Box:
        return spaces.Box(-100.0, 100.0, (1,), np.float32)

    def action_space(self, agent: str) -> spaces.Discrete:
        return spaces.Discrete(2)

    def reset(self, seed: int | None = None, options: Any = None) -> Any:
        self.agents, self.t = list(self.possible_agents), 0
        obs = np.array([self.length], np.float32)
        return {a: obs for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions: dict[str, int]) -> Any:
        self.t += 1
        obs = np.array([self.length - self.t], np.float32)
        if self.nan_at is not None and self.t >= self.nan_at:
            obs[:] = np.nan
        done = self.t >= self.length
        agents, self.agents = self.agents, [] if done else self.agents
        return (
            {a: obs for a in agents},
            dict.fromkeys(agents, 1.0),
            dict.fromkeys(agents, done),
            dict.fromkeys(agents, False),
            {a: {} for a in agents},
        )


def team_of_one(envs: int, nan: bool = False) -> TeamEnv:
    env_id = "fleetmind-test/NaNObs-v0" if nan else "fleetmind-test/Countdown-v0"
    return GymTeamEnv(make_vector_env(env_id, envs), env_id)


def team_of_two(envs: int, nan: bool = False) -> TeamEnv:
    def make() -> CountdownTeam:
        return CountdownTeam(50, 5) if nan else CountdownTeam()

    return MultiAgentVectorEnv([make] * envs, "countdown-team")


TEAMS = pytest.mark.parametrize("make_env", [team_of_one, team_of_two], ids=["one", "two"])
MakeEnv = Callable[..., TeamEnv]


class ConstantPolicy:
    """Action 0 for every agent; value = first input feature (next_values are checkable)."""

    def step(self, inputs: list[np.ndarray]) -> list[StepOutput]:
        n = inputs[0].shape[0]
        return [
            StepOutput(np.zeros(n, np.int64), np.zeros(n, np.float32), x[:, 0].copy())
            for x in inputs
        ]


def _collector(env: TeamEnv, steps: int, stats: bool = False, gamma: float | None = None) -> Any:
    agents = len(env.spec.agents)
    obs_stats = [RunningMeanStd((1,)) if stats else None for _ in range(agents)]
    return Collector(env, steps, [lambda a: a] * agents, obs_stats, reward_gamma=gamma)


@TEAMS
def test_autoreset_step_is_invalid_and_episode_counted(make_env: MakeEnv) -> None:
    collector = _collector(make_env(2), steps=8)
    trajectories = collector.collect(ConstantPolicy())
    agents = len(trajectories)
    for traj in trajectories:
        # Countdown(3): steps 0,1,2 valid (2 terminates), step 3 is the autoreset step.
        assert traj.valid[:, 0].tolist() == [True, True, True, False, True, True, True, False]
        assert traj.terminated[:, 0].tolist() == [0, 0, 1, 0, 0, 0, 1, 0]
        assert traj.rewards[:, 0].tolist() == [1, 1, 1, 0, 1, 1, 1, 0]
        assert traj.obs[:, 0, 0].tolist() == [3, 2, 1, 0, 3, 2, 1, 0]
        # next value of each step is the value of the observation that followed it
        assert traj.next_values[:, 0].tolist() == [2, 1, 0, 3, 2, 1, 0, 3]
        assert traj.decision is None
    assert collector.stats.episodes == 4
    assert list(collector.stats.returns) == [3.0 * agents] * 4
    assert list(collector.stats.lengths) == [3] * 4
    assert set(collector.agent_returns.means().values()) == {3.0}
    assert collector.env_steps == 16


@TEAMS
def test_state_carries_across_collect_calls(make_env: MakeEnv) -> None:
    collector = _collector(make_env(1), steps=2)
    first = collector.collect(ConstantPolicy())
    second = collector.collect(ConstantPolicy())
    assert first[0].valid[:, 0].tolist() == [True, True]
    assert second[0].valid[:, 0].tolist() == [True, False]
    assert collector.stats.episodes == 1


@TEAMS
def test_nan_observation_names_env_and_step(make_env: MakeEnv) -> None:
    collector = _collector(make_env(2, nan=True), steps=10)
    with pytest.raises(EnvironmentStepError, match=r"NaN or infinite observation at env step 10"):
        collector.collect(ConstantPolicy())


@TEAMS
def test_observation_statistics_update_per_agent(make_env: MakeEnv) -> None:
    collector = _collector(make_env(4), steps=16, stats=True)
    collector.collect(ConstantPolicy())
    for stats in collector.obs_stats:
        assert stats is not None
        assert stats.count == 4 * 16  # the 16 rows collected (the next one starts the next)


@TEAMS
def test_rewards_scale_by_each_agents_discounted_return(make_env: MakeEnv) -> None:
    collector = _collector(make_env(2), steps=8, gamma=0.9)
    trajectories = collector.collect(ConstantPolicy())
    assert collector.reward_stats is not None
    assert len(collector.reward_stats) == len(trajectories)
    for traj, stats in zip(trajectories, collector.reward_stats, strict=True):
        assert stats.count == 2 * 6  # valid rows only
        scale = 1.0 / np.sqrt(stats.var + 1e-8)
        # the last step is scaled by the statistics as they stood after it
        np.testing.assert_allclose(traj.rewards[-2], scale, rtol=1e-6)
        assert traj.rewards[-1].tolist() == [0.0, 0.0]
    # episode returns stay raw
    assert set(collector.stats.returns) == {3.0 * len(trajectories)}


def test_a_team_of_one_keeps_observation_shape_and_float64_rewards() -> None:
    env = GymTeamEnv(make_vector_env("CartPole-v1", 3), "CartPole-v1")
    step = env.reset(seed=0)
    assert env.spec.agents == ("agent",)
    assert step.obs[0].shape == (3, 4)
    assert step.reset_now.all()
    assert not step.active.any()
    step = env.step([np.zeros(3, np.int64)])
    assert step.rewards.dtype == np.float64
    assert step.active.all()
    with pytest.raises(EnvironmentStepError, match="one agent"):
        env.step([np.zeros(3, np.int64)] * 2)
    env.close()


def test_a_rollout_of_no_steps_is_a_config_error() -> None:
    env = team_of_one(1)
    with pytest.raises(ConfigError, match="num_steps=0 must be positive"):
        Collector(env, 0, [lambda a: a], [None])
    env.close()
