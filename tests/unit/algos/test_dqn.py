"""DQN: spaces, learning on tiny envs, epsilon schedule, checkpoints."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from tests.unit.algos.dqn_helpers import Collector, make_trajectory

from fleetmind.algos.checkpoint import CheckpointStore
from fleetmind.algos.dqn.config import DQNConfig
from fleetmind.algos.dqn.learner import SPEC, DQNLearner
from fleetmind.algos.registry import get_algorithm
from fleetmind.core.agent import Agent
from fleetmind.core.errors import ConfigError
from fleetmind.core.spaces import SpaceSpec

BOX4 = SpaceSpec("box", (4,), "float32")
TWO = SpaceSpec("discrete", (), "int64", n=2)
SMALL = DQNConfig(
    hidden_sizes=(16,),
    learning_starts=20,
    batch_size=32,
    train_frequency=4,
    gradient_steps=2,
    target_update_interval=50,
    exploration_steps=200,
    buffer_size=2000,
    learning_rate=1e-2,
)


def test_registry_and_spec() -> None:
    assert get_algorithm("dqn") is SPEC
    assert SPEC.rollout_length(DQNConfig(rollout_length=3)) == 3
    assert SPEC.supports_action(TWO) is None


def test_continuous_actions_are_refused_with_ppo_hint() -> None:
    box = SpaceSpec("box", (2,), "float32", low=(-1.0, -1.0), high=(1.0, 1.0))
    message = SPEC.supports_action(box)
    assert message is not None
    assert "discrete" in message
    assert "--algo ppo" in message
    with pytest.raises(ConfigError, match="--algo ppo"):
        SPEC.build(DQNConfig(), BOX4, box, 0)


@pytest.mark.parametrize(
    ("change", "message"),
    [({"gamma": 1.5}, "gamma"), ({"n_step": 0}, "n_step"), ({"buffer_size": 8}, "buffer_size")],
)
def test_bad_config(change: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DQNLearner(dataclasses.replace(DQNConfig(), **change), BOX4, TWO, 0)


def test_epsilon_schedule() -> None:
    config = dataclasses.replace(SMALL, exploration_steps=100, exploration_final_eps=0.1)
    learner = DQNLearner(config, BOX4, TWO, 0)
    assert learner.epsilon() == 1.0
    learner.env_steps = 50
    assert learner.epsilon() == pytest.approx(0.55)
    learner.env_steps = 1000
    assert learner.epsilon() == pytest.approx(0.1)


def _chain_step(learner: DQNLearner, steps: int) -> None:
    # One-step episodes: action 1 pays 1, action 0 pays 0; every other row is autoreset.
    policy = learner.rollout_policy()
    for _ in range(steps):
        obs = [[0.5, 0.5, 0.5, 0.5]] * 2
        action = int(policy.step(np.asarray(obs[:1], dtype=np.float32)).actions[0])
        learner.update(
            make_trajectory(
                obs=obs,
                rewards=[float(action), 0.0],
                terminated=[True, False],
                truncated=[False, False],
                valid=[True, False],
                actions=[action, 0],
            )
        )


@pytest.mark.parametrize(
    "extra", [{}, {"dueling": True, "n_step": 3}, {"prioritized": True, "double": False}]
)
def test_learns_terminal_values(extra: dict[str, object]) -> None:
    learner = DQNLearner(dataclasses.replace(SMALL, **extra), BOX4, TWO, 0)
    _chain_step(learner, 150)
    q = learner.inference_policy().q_values(np.full((1, 4), 0.5, dtype=np.float32))[0]
    assert q[1] == pytest.approx(1.0, abs=0.1)
    assert q[0] == pytest.approx(0.0, abs=0.1)
    assert learner.grad_steps > 0


def test_discrete_observations_on_frozen_lake() -> None:
    env = gym.make_vec("FrozenLake-v1", num_envs=2, vectorization_mode="sync", is_slippery=False)
    obs_space = SpaceSpec("discrete", (), "int64", n=16)
    learner = DQNLearner(
        dataclasses.replace(SMALL, n_step=3), obs_space, SpaceSpec("discrete", (), "int64", n=4), 0
    )
    collector = Collector(env, seed=0)
    for _ in range(50):
        learner.update(collector.collect(learner.rollout_policy(), 4))
    env.close()
    decision = learner.inference_policy().decide(np.arange(16, dtype=np.float32), True)
    assert decision.actions.shape == (16,)
    assert decision.outputs["q_values"].shape == (16, 4)


def test_cartpole_collection_and_agent() -> None:
    env = gym.make_vec("CartPole-v1", num_envs=3, vectorization_mode="sync")
    learner = DQNLearner(SMALL, BOX4, TWO, 0)
    collector = Collector(env, seed=0)
    for _ in range(40):
        metrics = learner.update(collector.collect(learner.rollout_policy(), 4))
    env.close()
    assert learner.env_steps == 40 * 12
    assert learner.version == 40
    assert "loss" in metrics
    assert np.isfinite(metrics["loss"])
    agent = Agent(learner.inference_policy(), BOX4, TWO)
    decision = agent.decide_batch(np.zeros((5, 4), dtype=np.float32))
    assert decision.actions.shape == (5,)
    assert set(decision.outputs) == set(learner.inference_policy().output_specs)


def test_checkpoint_round_trip_resumes_exactly(tmp_path: Path) -> None:
    env = gym.make_vec("CartPole-v1", num_envs=2, vectorization_mode="sync")
    learner = DQNLearner(dataclasses.replace(SMALL, prioritized=True), BOX4, TWO, 3)
    collector = Collector(env, seed=0)
    for _ in range(40):
        learner.update(collector.collect(learner.rollout_policy(), 4))
    chunk = collector.collect(learner.rollout_policy(), 4)
    env.close()
    store = CheckpointStore(tmp_path)
    store.save({"learner": learner.state_dict(), "env_steps": learner.env_steps})
    restored = DQNLearner(dataclasses.replace(SMALL, prioritized=True), BOX4, TWO, 99)
    restored.load_state_dict(store.load_latest()["learner"])
    assert (restored.env_steps, restored.version) == (learner.env_steps, learner.version)
    assert restored.buffer is not None
    assert len(restored.buffer) == len(learner.buffer or [])
    first = learner.update(chunk)
    second = restored.update(chunk)
    assert first == pytest.approx(second)
    for a, b in zip(learner.q_net.parameters(), restored.q_net.parameters(), strict=True):
        torch.testing.assert_close(a, b)
