"""Tabular Q-learning and SARSA on toy-text envs."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from fleetmind.algos.tabular.episodes import TabularConfig, greedy_return, train_tabular
from fleetmind.algos.tabular.planning import PlanningConfig, value_iteration
from fleetmind.core.errors import ConfigError
from fleetmind.envs.finite_mdp import from_gymnasium


def test_q_learning_finds_the_short_risky_path_on_cliff_walking() -> None:
    env = gym.make("CliffWalking-v1", max_episode_steps=200)
    config = TabularConfig(
        algo="q_learning",
        episodes=300,
        learning_rate=0.5,
        gamma=1.0,
        epsilon_start=0.1,
        epsilon_end=0.1,
    )
    result = train_tabular(env, config)
    assert greedy_return(env, result.q) == -13.0  # the optimum along the cliff edge


def test_sarsa_learns_the_safe_path_on_cliff_walking() -> None:
    env = gym.make("CliffWalking-v1", max_episode_steps=200)
    config = TabularConfig(
        algo="sarsa", episodes=500, learning_rate=0.5, gamma=1.0, epsilon_start=0.1, epsilon_end=0.1
    )
    result = train_tabular(env, config)
    safe = greedy_return(env, result.q)
    assert -25.0 <= safe < -13.0  # reaches the goal, keeping away from the cliff
    # Online SARSA returns beat Q-learning's (Sutton & Barto, example 6.6).
    q_result = train_tabular(
        env,
        TabularConfig(
            algo="q_learning",
            episodes=500,
            learning_rate=0.5,
            gamma=1.0,
            epsilon_start=0.1,
            epsilon_end=0.1,
        ),
    )
    assert result.episode_returns[-200:].mean() > q_result.episode_returns[-200:].mean()


def test_q_learning_values_approach_planning_on_deterministic_lake() -> None:
    env = gym.make("FrozenLake-v1", is_slippery=False)
    result = train_tabular(env, TabularConfig(episodes=800, learning_rate=0.5, gamma=0.9))
    assert greedy_return(env, result.q) == 1.0
    optimum = value_iteration(from_gymnasium("FrozenLake-v1"), PlanningConfig(gamma=0.9))
    assert result.q[0].max() <= 0.9**5 + 1e-9  # never above the 6-step deterministic optimum
    assert result.q[0].max() == pytest.approx(0.9**5, abs=0.05)
    assert optimum.values[0] < result.q[0].max()  # slipping makes the real lake worse


def test_continuous_observations_are_refused() -> None:
    with pytest.raises(ConfigError, match="discrete observations"):
        train_tabular(gym.make("CartPole-v1"), TabularConfig(episodes=1))


@pytest.mark.parametrize("change", [{"learning_rate": 0.0}, {"gamma": 2.0}, {"episodes": 0}])
def test_bad_config(change: dict[str, float]) -> None:
    config = TabularConfig(**change)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        train_tabular(gym.make("FrozenLake-v1"), config)


def test_epsilon_schedule() -> None:
    config = TabularConfig(epsilon_start=1.0, epsilon_end=0.0, epsilon_decay_episodes=10)
    assert [config.epsilon(e) for e in (0, 5, 10, 99)] == pytest.approx([1.0, 0.5, 0.0, 0.0])
    assert np.isfinite(config.epsilon(3))
