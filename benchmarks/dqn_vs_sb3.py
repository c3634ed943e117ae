"""DQN training throughput (env steps/s) on CartPole-v1: fleetmind vs Stable-Baselines3.

Both learners use RL-Zoo's tuned CartPole hyperparameters (lr 2.3e-3, batch 64,
buffer 100k, learning_starts 1000, train_freq 256, gradient_steps 128,
target_update_interval 10, 256x256 MLP, epsilon 1 -> 0.04 over 16% of the budget)
and one torch thread, and train for the same number of env steps in this process.
SB3 uses RL-Zoo's single env; fleetmind steps ``--envs`` copies as one vector
(its ``train_frequency`` counts env steps over all copies, like SB3's).
A third row runs ``recipes/cartpole-dqn.yaml`` (the settings of the slow test).

    .venv/bin/python benchmarks/dqn_vs_sb3.py [--steps 20000] [--envs 8]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import torch

from fleetmind.algos.dqn_config import DQNConfig
from fleetmind.cli.train_cmd import load_yaml
from fleetmind.core.config import config_from_mapping
from fleetmind.runtime.config import TrainConfig
from fleetmind.runtime.local import train

ZOO = {
    "learning_rate": 2.3e-3,
    "batch_size": 64,
    "buffer_size": 100_000,
    "learning_starts": 1000,
    "gamma": 0.99,
    "target_update_interval": 10,
    "train_freq": 256,
    "gradient_steps": 128,
    "exploration_fraction": 0.16,
    "exploration_final_eps": 0.04,
}
RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "cartpole-dqn.yaml"


def run_sb3(steps: int, seed: int) -> float:
    """Env steps per second of SB3's DQN."""
    import gymnasium as gym
    from stable_baselines3 import DQN

    model = DQN(
        "MlpPolicy",
        gym.make("CartPole-v1"),
        seed=seed,
        device="cpu",
        policy_kwargs={"net_arch": [256, 256]},
        **ZOO,
    )
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps)
    return steps / (time.perf_counter() - t0)


def run_fleetmind(steps: int, envs: int, seed: int, dqn: DQNConfig, tmp: Path) -> float:
    """Env steps per second of fleetmind's trainer with DQN."""
    config = TrainConfig(
        env_id="CartPole-v1",
        algo="dqn",
        seed=seed,
        steps=steps,
        envs=envs,
        run_dir=tmp / f"run-{time.monotonic_ns()}",
        normalize_obs=False,
        checkpoint_interval_s=1e9,
        log_interval_s=1e9,
    )
    t0 = time.perf_counter()
    result = train(config, dqn, progress=False)
    return result.env_steps / (time.perf_counter() - t0)


def zoo_config(steps: int) -> DQNConfig:
    """RL-Zoo's CartPole hyperparameters in fleetmind's terms."""
    return DQNConfig(
        learning_rate=ZOO["learning_rate"],
        batch_size=64,
        buffer_size=100_000,
        learning_starts=1000,
        gamma=0.99,
        target_update_interval=10,
        train_frequency=256,
        gradient_steps=128,
        exploration_final_eps=0.04,
        exploration_steps=int(ZOO["exploration_fraction"] * steps),
        hidden_sizes=(256, 256),
        double=False,
        n_step=1,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    recipe = load_yaml(RECIPE)
    recipe_dqn = config_from_mapping(DQNConfig, recipe["dqn"], "dqn")
    with tempfile.TemporaryDirectory() as tmp:
        sb3 = run_sb3(args.steps, args.seed)
        ours = run_fleetmind(args.steps, args.envs, args.seed, zoo_config(args.steps), Path(tmp))
        tuned = run_fleetmind(args.steps, int(recipe["envs"]), args.seed, recipe_dqn, Path(tmp))
    print(f"CartPole-v1, {args.steps} env steps each, torch threads 1")
    print(f"SB3 DQN, RL-Zoo hyperparameters, 1 env        : {sb3:8.0f} env steps/s")
    print(
        f"fleetmind DQN, same hyperparameters, {args.envs} envs  : {ours:8.0f} env steps/s "
        f"({ours / sb3:.2f}x)"
    )
    print(
        f"fleetmind DQN, recipes/cartpole-dqn.yaml       : {tuned:8.0f} env steps/s "
        f"({tuned / sb3:.2f}x)"
    )


if __name__ == "__main__":
    main()
