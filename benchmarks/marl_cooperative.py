"""Shared-parameter MAPPO against independent PPO learners and a random team.

On mpe2's cooperative simple_spread (3 agents, 3 landmarks, 25-step episodes) each
learner trains for the same number of joint env steps with the same seeds; every
trained team is then evaluated greedily on the same evaluation episodes, and so is
a team that acts uniformly at random. Figures: mean team return per method and
seed, and the fraction of the random-to-MAPPO gap that independent learners close.

    .venv/bin/python benchmarks/marl_cooperative.py --steps 60000 --seeds 1 2 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import fleetmind
from fleetmind.envs.registry import make_team_vector_env

DEFAULT_ENV = "fleetmind/coordination-large-v0"
METHODS = {
    "mappo": {"algo": "mappo", "config": {}},
    "ippo": {"algo": "ippo", "config": {}},
}


def random_team_returns(env_id: str, episodes: int, seed: int) -> list[float]:
    """Team returns of uniformly random actions on the evaluation episodes."""
    env = make_team_vector_env(env_id, episodes)
    rng = np.random.default_rng(seed)
    step = env.reset(seed=seed)
    totals = np.zeros(episodes)
    running = np.ones(episodes, dtype=bool)
    while running.any():
        actions = [rng.integers(0, int(s.n or 1), size=episodes) for s in env.spec.action_spaces]
        step = env.step(actions)
        totals += np.where(running, step.rewards.sum(axis=1), 0.0)
        running &= ~step.episode_end
    env.close()
    return [float(v) for v in totals]


def train_and_evaluate(
    env_id: str,
    method: str,
    seed: int,
    steps: int,
    envs: int,
    episodes: int,
    root: Path,
    overrides: dict[str, Any],
) -> dict[str, float]:
    """Train one team, evaluate it greedily; return its figures."""
    from fleetmind.algos.registry import get_algorithm

    spec = get_algorithm(METHODS[method]["algo"])
    algo_config = spec.config_cls(**{**METHODS[method]["config"], **overrides})
    start = time.monotonic()
    result = fleetmind.train(
        env_id,
        algo=spec.name,
        algo_config=algo_config,
        steps=steps,
        envs=envs,
        seed=seed,
        run_dir=str(root / f"{method}-{seed}"),
        progress=False,
        log_interval_s=10.0,
    )
    wall = time.monotonic() - start
    evaluation = fleetmind.evaluate(result.run_dir, episodes=episodes, seed=10_000)
    return {
        "train_return_last100": float(result.episode_return_mean or float("nan")),
        "eval_return": evaluation.mean_return,
        "wall_s": wall,
    }


def main() -> None:
    """Run every method on every seed and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default=DEFAULT_ENV, help="cooperative multi-agent env id")
    parser.add_argument("--steps", type=int, default=60_000, help="joint env steps per run")
    parser.add_argument("--envs", type=int, default=16, help="env copies per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--episodes", type=int, default=64, help="evaluation episodes")
    parser.add_argument("--learning-rate", type=float, help="override of both methods")
    parser.add_argument("--minibatch-size", type=int, help="override of both methods")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    overrides = {
        k: v
        for k, v in (("learning_rate", args.learning_rate), ("minibatch_size", args.minibatch_size))
        if v is not None
    }
    rows: dict[str, dict[int, dict[str, float]]] = {m: {} for m in METHODS}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for method in METHODS:
                figures = train_and_evaluate(
                    args.env,
                    method,
                    seed,
                    args.steps,
                    args.envs,
                    args.episodes,
                    Path(tmp),
                    overrides,
                )
                rows[method][seed] = figures
                print(
                    f"{method:6s} seed={seed} "
                    + " ".join(f"{k}={v:.2f}" for k, v in figures.items()),
                    flush=True,
                )
    random_eval = statistics.mean(random_team_returns(args.env, args.episodes, 10_000))
    summary = {m: statistics.mean(r["eval_return"] for r in rows[m].values()) for m in METHODS}
    gap_closed = (summary["ippo"] - random_eval) / (summary["mappo"] - random_eval)
    wins = sum(rows["mappo"][s]["eval_return"] > rows["ippo"][s]["eval_return"] for s in args.seeds)
    print(
        f"\n{args.env}, {args.steps} joint steps x {len(args.seeds)} seeds {args.seeds}, "
        f"greedy evaluation on {args.episodes} episodes"
    )
    print(f"random team      : {random_eval:8.2f}")
    for method in METHODS:
        per_seed = ", ".join(f"{rows[method][s]['eval_return']:.2f}" for s in args.seeds)
        print(f"{method:16s} : {summary[method]:8.2f}   (seeds: {per_seed})")
    print(
        f"MAPPO beats IPPO on {wins}/{len(args.seeds)} seeds; IPPO closes "
        f"{100 * gap_closed:.0f}% of the random-to-MAPPO gap"
    )
    if args.json:
        args.json.write_text(
            json.dumps({"rows": rows, "random": random_eval, "summary": summary}, indent=2)
        )


if __name__ == "__main__":
    main()
