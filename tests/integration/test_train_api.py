"""The Python API with actor processes: the same launch as ``fleetmind train --actors N``."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import gymnasium as gym
import pytest

import fleetmind
from fleetmind.runtime.run_dir import read_metrics

STEPS = 640
"""Ten updates of 4 environments x 16 steps: a few seconds."""
FAST = {"envs": 4, "log_interval_s": 0.3, "progress": False}
"""Settings that keep a run short (the keywords of tests.integration.procs.FAST)."""


def _registrations(caplog: pytest.LogCaptureFixture) -> int:
    return sum("registered (session" in r.getMessage() for r in caplog.records)


def test_train_with_an_actor_then_load_evaluate_and_resume(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fleetmind.learner")
    run_dir = tmp_path / "run"
    result = fleetmind.train(
        "CartPole-v1", actors=1, steps=STEPS, run_dir=run_dir,
        algo_config={"rollout_steps": 16, "update_epochs": 2}, **FAST,
    )  # fmt: skip
    assert result.env_steps >= STEPS
    assert not result.interrupted
    assert result.run_dir == str(run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["distributed"]["actors"] == 1
    assert (run_dir / "actors" / "actor-0.log").is_file()
    assert _registrations(caplog) == 1

    agent = fleetmind.load(run_dir)
    env = gym.make("CartPole-v1")
    observation, _ = env.reset(seed=0)
    assert env.action_space.contains(agent.act(observation))
    env.close()
    assert fleetmind.evaluate(run_dir, episodes=2).episodes == 2

    resumed = fleetmind.resume(run_dir, steps=2 * STEPS, progress=False)
    assert resumed.env_steps >= 2 * STEPS
    assert _registrations(caplog) == 2  # resumed with its actor, as the command does


def test_async_impala_with_an_actor(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = fleetmind.train(
        "CartPole-v1", algo="impala", mode="async", actors=1, steps=STEPS, run_dir=run_dir,
        max_policy_lag=4, algo_config={"rollout_steps": 16}, **FAST,
    )  # fmt: skip
    assert result.env_steps >= STEPS
    lags = [r["policy_lag_max"] for r in read_metrics(run_dir) if "policy_lag_max" in r]
    assert lags
    assert all(lag <= 4 for lag in lags)
    assert json.loads((run_dir / "config.json").read_text())["distributed"]["mode"] == "async"
