"""Learning thresholds (minutes each): run with `scripts/test -m slow`."""

from pathlib import Path

import pytest
import yaml

from fleetmind.algos.ppo.config import PPOConfig
from fleetmind.config import config_from_mapping
from fleetmind.runtime.config import TrainConfig
from fleetmind.runtime.evaluate import evaluate
from fleetmind.runtime.local import train

RECIPES = Path(__file__).resolve().parents[2] / "recipes"

pytestmark = pytest.mark.slow


def recipe(name: str, run_dir: Path, seed: int) -> tuple[TrainConfig, PPOConfig]:
    data = yaml.safe_load((RECIPES / name).read_text())
    algo = config_from_mapping(PPOConfig, data.pop("ppo"), "ppo")
    cfg = config_from_mapping(TrainConfig, data, name)
    cfg.run_dir, cfg.seed = run_dir, seed
    return cfg, algo


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ppo_solves_cartpole(tmp_path: Path, seed: int) -> None:
    cfg, algo = recipe("cartpole-ppo.yaml", tmp_path / "run", seed)
    cfg.target_return = 475.0
    result = train(cfg, algo, progress=False)
    assert result.solved, f"seed {seed}: mean return {result.episode_return_mean}"
    assert evaluate(tmp_path / "run", episodes=10).mean_return >= 475.0


def test_ppo_pendulum_reaches_minus_400(tmp_path: Path) -> None:
    cfg, algo = recipe("pendulum-ppo.yaml", tmp_path / "run", seed=1)
    assert cfg.steps <= 300_000
    result = train(cfg, algo, progress=False)
    assert result.episode_return_mean is not None
    assert result.episode_return_mean >= -400.0
