"""Signals report when their next action can change nothing (inside the minimum green)."""

from __future__ import annotations

import numpy as np
import pytest

from fleetmind.core.errors import EnvironmentStepError
from fleetmind.core.learning import StepOutput
from fleetmind.envs.gym_team import GymTeamEnv
from fleetmind.envs.scenarios.traffic import TrafficConfig, TrafficEnv
from fleetmind.envs.scenarios.traffic.catalog import make_agents_vector_env
from fleetmind.runtime.collector import Collector


class ConstantPolicy:
    """Always action 0 (for a signal: phase 0)."""

    def step(self, inputs: list[np.ndarray]) -> list[StepOutput]:
        n = inputs[0].shape[0]
        zeros = np.zeros(n, np.float32)
        return [StepOutput(np.zeros(n, np.int64), zeros, zeros)]


def _collector(env: object, env_id: str, steps: int) -> Collector:
    return Collector(GymTeamEnv(env, env_id), steps, [lambda a: a], [None])


def test_locked_signals_keep_their_phase_whatever_they_ask() -> None:
    env = TrafficEnv(TrafficConfig(rows=2, cols=2, min_green=10, episode_seconds=400))
    rng = np.random.default_rng(0)
    _, infos = env.reset(seed=0)
    assert not any(info["decision"] for info in infos.values())  # phase 0 just started
    seen = {True: 0, False: 0}
    while env.agents:
        before = env.sim.phase.copy()
        actions = {a: int(rng.integers(4)) for a in env.agents}
        free = [infos[a]["decision"] for a in env.possible_agents]
        _, _, _, _, infos = env.step(actions)
        for i, agent in enumerate(env.possible_agents):
            seen[free[i]] += 1
            if free[i]:
                assert env.sim.phase[i] == actions[agent]
            else:
                assert env.sim.phase[i] == before[i]
    assert seen[True] > 0
    assert seen[False] > 0


def test_vector_info_and_trajectory_mark_the_decisions() -> None:
    collector = _collector(make_agents_vector_env("traffic-grid2x2", 2), "traffic-grid2x2", 12)
    [trajectory] = collector.collect(ConstantPolicy())  # always asks for phase 0
    assert trajectory.decision is not None
    # The observation's may-switch flag (index 5) is what the env reported.
    np.testing.assert_array_equal(trajectory.decision, trajectory.obs[..., 5] == 1.0)
    assert not trajectory.decision[0].any()
    assert trajectory.decision[-1].all()


def test_envs_without_the_key_give_no_decision_array() -> None:
    from fleetmind.envs.registry import make_vector_env

    collector = _collector(make_vector_env("fleetmind-test/Countdown-v0", 2), "countdown", 4)
    assert collector.collect(ConstantPolicy())[0].decision is None


class _BadInfoEnv:
    """A vector env whose decision flags have the wrong shape."""

    num_envs = 2

    def __init__(self) -> None:
        inner = make_agents_vector_env("traffic-single", 2)
        self.single_observation_space = inner.single_observation_space
        self.single_action_space = inner.single_action_space
        self.observation_space = inner.observation_space
        self.action_space = inner.action_space
        self.inner = inner

    def reset(self, **kwargs: object) -> tuple[np.ndarray, dict[str, object]]:
        obs, _ = self.inner.reset()
        return obs, {"decision": np.ones(3, bool)}


def test_decision_flags_of_the_wrong_shape_are_a_clear_error() -> None:
    with pytest.raises(EnvironmentStepError, match=r"info\['decision'\] of shape \[3\]"):
        _collector(_BadInfoEnv(), "bad-info", 4)
