"""DQN training throughput (env steps/s) on CartPole-v1: fleetmind vs Stable-Baselines3.

Both learners use RL-Zoo's tuned CartPole hyperparameters (lr 2.3e-3, batch 64,
buffer 100k, learning_starts 1000, train_freq 256, gradient_steps 128,
target_update_interval 10, 256x256 MLP, epsilon 1 -> 0.04 over 16% of the budget)
and one torch thread, and train for the same number of env steps in this process.
SB3 uses RL-Zoo's single env; fleetmind steps ``--envs`` copies as one vector
(its ``train_frequency`` counts env steps over all copies, like SB3's), once with
the torch backend and once with the numpy backend (the default where it applies).
A last row runs ``recipes/cartpole-dqn.yaml`` (the settings of the slow test) on
the default backend. CPU seconds per 1,000 env steps are printed beside each rate:
they are less sensitive than wall time to other jobs on a shared machine.

    .venv/bin/python benchmarks/dqn_vs_sb3.py [--steps 20000] [--envs 8]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from typing import Literal

import torch
from threadpoolctl import threadpool_limits

from fleetmind.algos.dqn.config import DQNConfig
from fleetmind.cli.train_cmd import load_yaml
from fleetmind.config import config_from_mapping
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


def run_sb3(steps: int, seed: int) -> tuple[float, float]:
    """Env steps per second and CPU seconds per 1,000 env steps of SB3's DQN."""
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
    t0, c0 = time.perf_counter(), time.process_time()
    model.learn(total_timesteps=steps)
    return steps / (time.perf_counter() - t0), 1000 * (time.process_time() - c0) / steps


def run_fleetmind(
    steps: int, envs: int, seed: int, dqn: DQNConfig, tmp: Path
) -> tuple[float, float]:
    """Env steps per second and CPU seconds per 1,000 env steps of fleetmind's DQN."""
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
    t0, c0 = time.perf_counter(), time.process_time()
    result = train(config, dqn, progress=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return result.env_steps / wall, 1000 * cpu / result.env_steps


def zoo_config(steps: int, backend: Literal["torch", "numpy"]) -> DQNConfig:
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
        backend=backend,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    threadpool_limits(limits=1, user_api="blas")
    recipe = load_yaml(RECIPE)
    recipe_dqn = config_from_mapping(DQNConfig, recipe["dqn"], "dqn")
    rows: list[tuple[str, tuple[float, float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(("SB3 DQN, RL-Zoo hyperparameters, 1 env", run_sb3(args.steps, args.seed)))
        # Warm-up: the first run in a process pays for lazy imports (plotting, ...).
        run_fleetmind(300, args.envs, args.seed, zoo_config(300, "torch"), Path(tmp))
        for backend in ("torch", "numpy"):
            zoo = zoo_config(args.steps, backend)
            result = run_fleetmind(args.steps, args.envs, args.seed, zoo, Path(tmp))
            rows.append(
                (f"fleetmind DQN, same hyperparameters, {backend}, {args.envs} envs", result)
            )
        result = run_fleetmind(args.steps, int(recipe["envs"]), args.seed, recipe_dqn, Path(tmp))
        rows.append(("fleetmind DQN, recipes/cartpole-dqn.yaml", result))
    print(f"CartPole-v1, {args.steps} env steps each, torch and BLAS threads 1")
    base_rate, base_cpu = rows[0][1]
    for name, (rate, cpu) in rows:
        print(
            f"{name:<52}: {rate:7.0f} env steps/s ({rate / base_rate:5.2f}x)  "
            f"{cpu:6.3f} CPU s per 1k steps ({base_cpu / cpu:5.2f}x)"
        )


if __name__ == "__main__":
    main()
