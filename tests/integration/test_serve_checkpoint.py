"""A real PPO run directory is served with the default loader and answers like the agent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fleetmind.algos.loading import load_agent
from fleetmind.runtime.config import TrainConfig
from fleetmind.runtime.local import train
from fleetmind.serve import Client
from fleetmind.serve.config import ServeConfig
from fleetmind.serve.repository import default_loader
from fleetmind.serve.testing import ServerThread


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("runs") / "cartpole"
    train(TrainConfig(env_id="CartPole-v1", steps=2000, envs=4, run_dir=path), progress=False)
    return path


def test_ppo_checkpoint_metadata_and_actions(run_dir: Path) -> None:
    config = ServeConfig(host="127.0.0.1", port=0, reload_interval_s=None)
    obs = np.random.default_rng(5).normal(size=(6, 4)).astype(np.float32) * 0.1
    with ServerThread(run_dir, config, default_loader) as server:
        client = Client(f"127.0.0.1:{server.port}")
        with client:
            info = client.model_metadata("cartpole")
            outputs = client.infer("cartpole", obs)
    assert info.platform == "fleetmind_ppo"
    assert [t.name for t in info.outputs] == ["action", "action_probs", "value"]
    expected = load_agent(run_dir).agent.decide_batch(obs, deterministic=True)
    np.testing.assert_array_equal(outputs["action"], expected.actions)
    np.testing.assert_allclose(outputs["action_probs"], expected.outputs["action_probs"], rtol=1e-5)
