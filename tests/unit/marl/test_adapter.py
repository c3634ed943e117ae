"""The PettingZoo adapter: the team vector env and its spaces."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from gymnasium import spaces

from fleetmind.core.errors import ConfigError, EnvironmentStepError
from fleetmind.envs.registry import make_team_vector_env
from fleetmind.envs.scenarios.coordination import CoordinationEnv
from fleetmind.envs.team import MultiAgentSpec, MultiAgentVectorEnv, describe

from .games import LeavingGame, MixedGame


def test_spec_of_a_homogeneous_env_with_state() -> None:
    spec = describe(CoordinationEnv(agents=3, choices=2))
    assert spec.agents == ("agent_0", "agent_1", "agent_2")
    assert spec.homogeneous
    assert spec.observation_spaces[0].shape == (8,)
    assert spec.action_spaces[0].n == 2
    assert spec.state_space is not None
    assert spec.state_space.shape == (8,)
    assert MultiAgentSpec.from_json(spec.to_json()) == spec


def test_spaces_are_flattened_and_heterogeneity_detected() -> None:
    spec = describe(MixedGame())
    assert not spec.homogeneous
    assert [s.shape for s in spec.observation_spaces] == [(4,), (4,)]
    assert [s.kind for s in spec.action_spaces] == ["discrete", "box"]
    assert spec.state_space is None
    env = MultiAgentVectorEnv([MixedGame, MixedGame])
    first = env.reset(seed=0)
    np.testing.assert_array_equal(first.obs[0], [[1, 0, 0, 0], [1, 0, 0, 0]])  # one-hot
    step = env.step([np.array([1, 0]), np.array([[0.5], [0.5]], np.float32)])
    np.testing.assert_array_equal(step.obs[0][0], [0, 1, 0, 0])
    np.testing.assert_allclose(step.obs[1][0], [0.25] * 4)
    np.testing.assert_allclose(step.rewards[:, 0], [1.0, 0.0])
    assert step.state is None


def test_agents_leaving_early_and_next_step_autoreset() -> None:
    env = MultiAgentVectorEnv([LeavingGame], "leaving")
    step = env.reset(seed=3)
    assert step.reset_now.all()
    assert not step.active.any()
    np.testing.assert_array_equal(step.state, [[0, 0]])
    ones = [np.array([1]), np.array([1])]
    step = env.step(ones)  # t=1: the quitter acts and leaves
    np.testing.assert_array_equal(step.active, [[True, True]])
    np.testing.assert_array_equal(step.terminated, [[False, True]])
    np.testing.assert_array_equal(step.rewards, [[1.0, 10.0]])
    np.testing.assert_array_equal(step.state, [[1, 2]])
    step = env.step(ones)  # t=2: only the stayer acts; the quitter reads zeros
    np.testing.assert_array_equal(step.active, [[True, False]])
    np.testing.assert_array_equal(step.rewards, [[1.0, 0.0]])
    np.testing.assert_array_equal(step.obs[1], [[0.0]])
    np.testing.assert_array_equal(step.state, [[2, 3]])
    step = env.step(ones)  # t=3: the stayer terminates, the episode ends
    assert step.episode_end.all()
    assert step.terminated[0, 0]
    step = env.step(ones)  # next-step autoreset: actions ignored
    assert step.reset_now.all()
    assert not step.active.any()
    np.testing.assert_array_equal(step.rewards, [[0.0, 0.0]])
    np.testing.assert_array_equal(step.state, [[0, 0]])


def test_copies_get_distinct_seeds_and_truncation_is_reported() -> None:
    env = make_team_vector_env("fleetmind/coordination-v0", 4)
    first = env.reset(seed=0)
    assert len({tuple(row) for row in first.obs[0]}) > 1  # different targets per copy
    again = MultiAgentVectorEnv([CoordinationEnv] * 4).reset(seed=0)
    np.testing.assert_array_equal(first.obs[0], again.obs[0])
    for _ in range(10):
        step = env.step([np.zeros(4, np.int64), np.zeros(4, np.int64)])
    assert step.truncated.all()
    assert step.episode_end.all()
    assert not step.terminated.any()


def test_bad_actions_and_spaces() -> None:
    env = MultiAgentVectorEnv([LeavingGame])
    env.reset()
    with pytest.raises(ConfigError, match="expected actions for 2 agents, got 1"):
        env.step([np.array([0])])

    class Binary(LeavingGame):
        def action_space(self, agent: str) -> spaces.MultiBinary:  # type: ignore[override]
            return spaces.MultiBinary(3)

    with pytest.raises(ConfigError, match="supports Discrete and Box action spaces"):
        describe(Binary())


def test_a_failing_env_step_names_the_copy() -> None:
    class Broken(LeavingGame):
        def step(self, actions: dict[str, int]) -> Any:
            raise ValueError("boom")

    env = MultiAgentVectorEnv([Broken], "broken")
    env.reset()
    with pytest.raises(EnvironmentStepError, match="broken copy 0 failed to step: boom"):
        env.step([np.array([0]), np.array([0])])


def test_agents_that_appear_between_steps_are_a_clear_error() -> None:
    class Shifting(LeavingGame):
        def step(self, actions: dict[str, int]) -> Any:
            result = super().step(actions)
            self.agents = [*self.agents, "newcomer"]  # not in possible_agents
            return result

    env = MultiAgentVectorEnv([Shifting], "shifting")
    env.reset()
    env.step([np.array([0]), np.array([0])])
    with pytest.raises(
        EnvironmentStepError, match=r"shifting copy 0 has acting agents \['newcomer'\]"
    ):
        env.step([np.array([0]), np.array([0])])

    class Renaming(LeavingGame):
        def step(self, actions: dict[str, int]) -> Any:
            obs, rew, term, trunc, info = super().step(actions)
            return {"stranger": obs["stayer"]}, rew, term, trunc, info

    env = MultiAgentVectorEnv([Renaming], "renaming")
    env.reset()
    with pytest.raises(EnvironmentStepError, match="observed agents \\['stranger'\\]"):
        env.step([np.array([0]), np.array([0])])
