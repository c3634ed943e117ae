"""Every id `fleetmind envs` lists trains for a few steps and evaluates."""

from pathlib import Path

import pytest

import fleetmind
from fleetmind.algos.ppo.config import PPOConfig
from fleetmind.envs.gym_vector import gymnasium_env_ids

TINY = PPOConfig(rollout_steps=8, minibatch_size=16, update_epochs=1)


@pytest.mark.filterwarnings("ignore:.*is out of date:DeprecationWarning")
@pytest.mark.parametrize("env_id", sorted(gymnasium_env_ids()))
def test_listed_env_trains_and_evaluates(tmp_path: Path, env_id: str) -> None:
    run = tmp_path / "run"
    result = fleetmind.train(
        env_id, steps=32, envs=2, run_dir=run, algo_config=TINY, progress=False
    )
    assert result.env_steps == 32
    agent = fleetmind.load(run)
    assert agent.observation_space.kind == "box"
