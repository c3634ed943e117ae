"""Baseline signal controllers, episode evaluation and the per-agent vector env."""

from __future__ import annotations

import numpy as np
import pytest

from fleetmind.core.errors import ConfigError, EnvironmentStepError, UnknownNameError
from fleetmind.envs.scenarios.traffic import TrafficConfig, TrafficEnv
from fleetmind.envs.scenarios.traffic.agents_vector import AgentsVectorEnv
from fleetmind.envs.scenarios.traffic.catalog import make_agents_vector_env
from fleetmind.envs.scenarios.traffic.controllers import FixedTime, make_controller
from fleetmind.envs.scenarios.traffic.evaluation import evaluate_agent, run_baseline

OVERRIDES = {"episode_seconds": 900}


def test_fixed_time_follows_its_plan() -> None:
    env = TrafficEnv(
        TrafficConfig(fixed_green_s=(20, 10, 20, 10), min_green=5, episode_seconds=200)
    )
    controller = FixedTime()
    env.reset(seed=0)
    controller.reset(env)
    phases = []
    while env.agents:
        env.step(controller.act(env))
        phases.append(int(env.sim.phase[0]))
    # 20 s of green (four steps of 5 s), then the next phase.
    assert phases[:5] == [0, 0, 0, 0, 1]
    assert set(phases) == {0, 1, 2, 3}


def test_adaptive_controllers_beat_fixed_time_under_unbalanced_demand() -> None:
    overrides = {**OVERRIDES, "demand": {"arrival_rates": [0.15, 0.02, 0.15, 0.02]}}
    wait = {
        name: run_baseline("traffic-grid2x2", name, episodes=1, seed=3, overrides=overrides)[
            "mean_waiting_time_s"
        ]
        for name in ("fixed-time", "max-pressure", "longest-queue")
    }
    assert wait["max-pressure"] < wait["fixed-time"]
    assert wait["longest-queue"] < wait["fixed-time"]


def test_run_baseline_reports_means_and_episodes() -> None:
    result = run_baseline("traffic-single", "max-pressure", episodes=2, seed=7, overrides=OVERRIDES)
    assert len(result["episodes"]) == 2
    for key in ("mean_waiting_time_s", "mean_travel_time_s", "throughput_vehicles"):
        values = [row[key] for row in result["episodes"]]
        assert result[key] == pytest.approx(np.mean(values))
    assert result["mean_travel_time_s"] >= result["mean_waiting_time_s"] > 0
    assert isinstance(result["episodes"][0]["throughput_vehicles"], int)
    again = run_baseline("traffic-single", "max-pressure", episodes=2, seed=7, overrides=OVERRIDES)
    assert again == result


def test_bad_baseline_arguments() -> None:
    with pytest.raises(UnknownNameError, match="fixed-time"):
        make_controller("fixed")
    with pytest.raises(ConfigError, match="episodes"):
        run_baseline("traffic-single", "fixed-time", episodes=0)


def test_evaluate_agent_with_a_constant_policy() -> None:
    def act_batch(obs: np.ndarray) -> np.ndarray:
        assert obs.shape == (4, 30)
        return np.zeros(len(obs), dtype=np.int64)

    result = evaluate_agent("traffic-grid2x2", act_batch, episodes=1, seed=0)
    assert result["throughput_vehicles"] > 0
    assert len(result["returns"]) == 1


def test_agents_vector_env_slots_and_autoreset() -> None:
    env = make_agents_vector_env("traffic-grid2x2", 2)
    for copy in env.envs:
        copy.config = TrafficConfig(rows=2, cols=2, episode_seconds=10)
        copy.sim.config = copy.config
    obs, _ = env.reset(seed=0)
    assert env.num_envs == 8
    assert obs.shape == (8, 30)
    actions = np.zeros(8, dtype=np.int64)
    _, rewards, _, trunc, _ = env.step(actions)
    assert rewards.shape == (8,)
    assert not trunc.any()
    _, _, _, trunc, _ = env.step(actions)
    assert trunc.all()  # 10 s = two steps
    obs, rewards, _, trunc, _ = env.step(actions)  # next-step autoreset
    assert not trunc.any()
    assert (rewards == 0).all()
    assert (obs[:, 0] == 1.0).all()  # back at phase 0
    env.close()


class _FailingEnv(TrafficEnv):
    """A simulator that dies on its third step of every episode (like a crashed SUMO)."""

    def reset(self, seed=None, options=None):  # type: ignore[no-untyped-def]
        self.calls = 0
        return super().reset(seed=seed, options=options)

    def step(self, actions):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls == 3:
            raise EnvironmentStepError("simulator stopped")
        return super().step(actions)


def test_agents_vector_env_restarts_a_failed_copy(caplog: pytest.LogCaptureFixture) -> None:
    env = AgentsVectorEnv(lambda: _FailingEnv(TrafficConfig(rows=1, cols=2)), 2)
    env.reset(seed=0)
    actions = np.zeros(4, dtype=np.int64)
    env.step(actions)
    env.step(actions)
    _, _, _, trunc, _ = env.step(actions)
    assert trunc.all()
    assert "restarting" in caplog.text
    _, rewards, _, trunc, _ = env.step(actions)  # fresh episodes
    assert not trunc.any()
    assert (rewards == 0).all()
    assert env.envs[0].calls == 0
