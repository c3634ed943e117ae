"""Time-to-solve CartPole-v1: fleetmind PPO against Stable-Baselines3 PPO.

Both train seeds 1..5 in this one process, alternating, each until the mean return
of the last 100 finished episodes reaches 475 (or a wall-clock cap). fleetmind uses
recipes/cartpole-ppo.yaml; Stable-Baselines3 uses RL-Zoo's tuned CartPole-v1
hyperparameters (8 envs, n_steps 32, batch 256, 20 epochs, gae_lambda 0.8,
gamma 0.98, linear schedules from lr 1e-3 and clip 0.2 over 1e5 steps).

    .venv/bin/python benchmarks/cartpole_vs_sb3.py [--seeds 1 2 3 4 5] [--cap-s 300]

Prints one line per run and the medians; ``--json FILE`` writes every figure.
An unsolved run counts as the cap in the median.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

SOLVED = 475.0
ZOO_TIMESTEPS = 100_000


def run_fleetmind(seed: int, cap_s: float, recipe: Path) -> dict[str, Any]:
    """Train fleetmind PPO with the recipe until solved or capped."""
    import yaml

    from fleetmind.algos.ppo.config import PPOConfig
    from fleetmind.config import config_from_mapping
    from fleetmind.runtime.config import TrainConfig
    from fleetmind.runtime.local import train

    data = yaml.safe_load(recipe.read_text())
    algo_cfg = config_from_mapping(PPOConfig, data.pop("ppo", {}), "ppo")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config_from_mapping(TrainConfig, data, "recipe")
        cfg.seed, cfg.target_return, cfg.run_dir = seed, SOLVED, Path(tmp) / "run"
        cfg.log_interval_s = cfg.checkpoint_interval_s = cap_s
        start = time.perf_counter()
        result = train(cfg, algo_cfg, progress=False)
        wall = time.perf_counter() - start
    return {
        "solved": result.solved,
        "time_to_solve_s": result.solved_at_wall_time_s if result.solved else None,
        "env_steps": result.env_steps,
        "steps_per_s": result.env_steps / wall,
        "wall_s": wall,
    }


def run_sb3(seed: int, cap_s: float, threads: int) -> dict[str, Any]:
    """Train SB3 PPO with RL-Zoo's CartPole-v1 hyperparameters until solved or capped."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(threads)

    class StopWhenSolved(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.start = time.perf_counter()
            self.solved_at: float | None = None
            self.stop = False

        def _on_step(self) -> bool:
            return not self.stop  # False ends learn()

        def _on_rollout_end(self) -> None:
            buf = self.model.ep_info_buffer
            full = buf is not None and len(buf) >= 100
            if full and self.solved_at is None and sum(e["r"] for e in buf) / len(buf) >= SOLVED:
                self.solved_at = time.perf_counter() - self.start
            if self.solved_at is not None or time.perf_counter() - self.start > cap_s:
                self.stop = True

    def linear(start: float) -> Any:
        return lambda progress: progress * start

    env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
    model = PPO(
        "MlpPolicy",
        env,
        n_steps=32,
        batch_size=256,
        gae_lambda=0.8,
        gamma=0.98,
        n_epochs=20,
        ent_coef=0.0,
        learning_rate=linear(1e-3),
        clip_range=linear(0.2),
        seed=seed,
        device="cpu",
        verbose=0,
    )
    callback = StopWhenSolved()
    start = time.perf_counter()
    model.learn(total_timesteps=ZOO_TIMESTEPS, callback=callback)
    wall = time.perf_counter() - start
    steps = int(model.num_timesteps)
    return {
        "solved": callback.solved_at is not None,
        "time_to_solve_s": callback.solved_at,
        "env_steps": steps,
        "steps_per_s": steps / wall,
        "wall_s": wall,
    }


def median_time(runs: list[dict[str, Any]], cap_s: float) -> float:
    """Median time-to-solve, counting an unsolved run as the cap."""
    return statistics.median(r["time_to_solve_s"] if r["solved"] else cap_s for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--cap-s", type=float, default=300.0)
    parser.add_argument("--recipe", type=Path, default=Path("recipes/cartpole-ppo.yaml"))
    parser.add_argument("--sb3-threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    args = parser.parse_args()
    runs: dict[str, list[dict[str, Any]]] = {"fleetmind": [], "sb3": []}
    for seed in args.seeds:
        for name in ("fleetmind", "sb3"):
            if name == "fleetmind":
                run = run_fleetmind(seed, args.cap_s, args.recipe)
            else:
                run = run_sb3(seed, args.cap_s, args.sb3_threads)
            run["seed"] = seed
            runs[name].append(run)
            solve = f"{run['time_to_solve_s']:.1f}s" if run["solved"] else "not solved"
            print(
                f"{name:9s} seed {seed}: {solve} at {run['env_steps']} steps, "
                f"{run['steps_per_s']:.0f} steps/s",
                flush=True,
            )
    med = {name: median_time(r, args.cap_s) for name, r in runs.items()}
    sps = {name: statistics.median(x["steps_per_s"] for x in r) for name, r in runs.items()}
    print(
        f"median time-to-solve: fleetmind {med['fleetmind']:.1f}s, SB3 {med['sb3']:.1f}s, "
        f"ratio {med['fleetmind'] / med['sb3']:.2f}x"
    )
    print(
        f"median env steps/s:   fleetmind {sps['fleetmind']:.0f}, SB3 {sps['sb3']:.0f}, "
        f"ratio {sps['fleetmind'] / sps['sb3']:.1f}x"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"runs": runs, "median_time_to_solve_s": med, "median_steps_per_s": sps}, indent=2
            )
        )


if __name__ == "__main__":
    main()
