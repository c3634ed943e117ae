"""Trained signal agents against the fixed-time and max-pressure baselines.

Evaluates a training run directory (shared-policy PPO/DQN or a MAPPO/IPPO team,
through the same code as ``fleetmind eval``) and every baseline controller on the same
evaluation seeds (by default 1000-1004, which training never uses as episode
seeds: training resets copy k with seed+k and then draws 31-bit seeds), and
prints each mean waiting time and the ratios the targets are stated in.

    .venv/bin/python benchmarks/traffic_compare.py RUN_DIR [--seed 1000] [--episodes 5]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from fleetmind.algos.loading import read_checkpoint
from fleetmind.envs.scenarios.traffic.evaluation import run_baseline
from fleetmind.runtime.evaluate import evaluate

POLICIES = ("fixed-time", "max-pressure", "longest-queue")
KEYS = ("mean_waiting_time_s", "mean_travel_time_s", "throughput_vehicles")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="training run directory")
    parser.add_argument("--seed", type=int, default=1000, help="first evaluation seed")
    parser.add_argument("--episodes", type=int, default=5, help="evaluation episodes")
    args = parser.parse_args()
    state, _ = read_checkpoint(Path(args.run_dir))
    env_id = str(state["env_id"])
    rows: dict[str, dict[str, float]] = {}
    start = time.perf_counter()
    trained = evaluate(args.run_dir, args.episodes, args.seed).scenario_metrics
    if trained is None:
        raise SystemExit(f"{args.run_dir} was not trained on a traffic scenario")
    rows[f"trained ({state['algo']}, {state['env_steps']} steps)"] = trained
    for policy in POLICIES:
        rows[policy] = run_baseline(env_id, policy, args.episodes, args.seed)
    print(f"{env_id}, seeds {args.seed}..{args.seed + args.episodes - 1}")
    print(f"{'controller':<40} {'wait s':>8} {'travel s':>9} {'throughput':>10}")
    for name, row in rows.items():
        print(f"{name:<40} {row[KEYS[0]]:8.2f} {row[KEYS[1]]:9.2f} {row[KEYS[2]]:10.1f}")
    wait = trained["mean_waiting_time_s"]
    ratios = {p: wait / rows[p]["mean_waiting_time_s"] for p in POLICIES}
    print(f"trained / fixed-time waiting:   {ratios['fixed-time']:.3f}  (target <= 0.7)")
    print(f"trained / max-pressure waiting: {ratios['max-pressure']:.3f}  (target <= 0.9)")
    per_episode = [round(r["mean_waiting_time_s"], 2) for r in trained["episodes"]]
    print(json.dumps({"trained_per_episode_wait": per_episode, "ratios": ratios}))
    print(f"evaluation wall time {time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    main()
