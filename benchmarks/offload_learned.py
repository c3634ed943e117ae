"""Learned offloading fleets against the baselines, with 95% intervals over training seeds.

For each scenario, trains one fleet per training seed with ``fleetmind train`` (a
recipe from ``--config``, else ``--algo``/``--steps``/``--envs``/``--actors``), then
evaluates each fleet deterministically on the baselines' evaluation episodes (seeds
``--seed`` .. ``--seed + --episodes - 1``, as ``benchmarks/offload_baselines.py``)
and runs every baseline on the same episodes. A fleet's figure is its mean over the
evaluation episodes; the learned row is the mean over the training seeds +/- the
half-width of the 95% t-interval. Ratios are paired: each fleet's mean over the
evaluation episodes over greedy's (and the best baseline's) on the very same
episodes, then the interval over the training seeds. The deadline-miss rate is
printed beside every completion time, and so is the mean cost per task, the
objective the fleets' reward counts (completion time + miss penalty x missed
deadline + energy weight x joules), with its own ratios to greedy and to the
baseline that is best by cost. The last line per scenario is JSON.

    .venv/bin/python benchmarks/offload_learned.py --scenario fleetmind/offload-contention \
        --config recipes/offload-contention-mappo.yaml --train-seeds 5
    .venv/bin/python benchmarks/offload_learned.py --scenario fleetmind/offload-toy \
        --algo mappo --steps 100000 --envs 8
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from fleetmind.runtime.evaluate import evaluate
from offload_baselines import episode_costs, interval, measure


def train_command(args: argparse.Namespace, env_id: str, seed: int, run_dir: Path) -> list[str]:
    """The ``fleetmind train`` command line of one training seed."""
    cmd = [sys.executable, "-m", "fleetmind", "train", env_id, "--seed", str(seed)]
    cmd += ["--run-dir", str(run_dir), "--force", "--no-progress", "--log-interval-s", "30"]
    if args.config is not None:
        cmd += ["--config", str(args.config)]
    for flag in ("algo", "steps", "envs", "actors"):
        value = getattr(args, flag)
        if value is not None:
            cmd += [f"--{flag}", str(value)]
    return cmd + list(args.train_arg)


def train_and_evaluate(
    args: argparse.Namespace, env_id: str, seed: int, root: Path
) -> dict[str, Any]:
    """Train one fleet and return its per-episode measures on the evaluation seeds."""
    run_dir = root / f"{env_id.rsplit('/', 1)[-1]}-{seed}"
    wall = float("nan")
    if not (args.reuse and (run_dir / "config.json").exists()):
        cmd = train_command(args, env_id, seed, run_dir)
        start = time.monotonic()
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.monotonic() - start
        if done.returncode != 0:
            raise SystemExit(f"training failed ({' '.join(cmd)}):\n{done.stderr[-2000:]}")
    result = evaluate(run_dir, args.episodes, args.seed, deterministic=True)
    episodes = (result.scenario_metrics or {}).get("episodes", [])
    return {
        "times": [e["mean_completion_time_s"] for e in episodes],
        "misses": [e["deadline_miss_rate"] for e in episodes],
        "costs": episode_costs(env_id, episodes, {}),
        "share": [result.scenario_metrics[f"share_{p}"] for p in ("local", "edge", "cloud")]
        if result.scenario_metrics
        else [],
        "train_wall_s": wall,
    }


def compare(fleets: list[dict[str, Any]], baselines: dict[str, Any]) -> dict[str, Any]:
    """Learned figures, and paired ratios to greedy and to the best baseline."""
    best = min(baselines, key=lambda p: baselines[p]["completion_time_s"][0])
    per_seed_time = [float(np.mean(f["times"])) for f in fleets]
    per_seed_miss = [float(np.mean(f["misses"])) for f in fleets]
    greedy_mean = float(np.mean(baselines["greedy"]["times"]))
    best_mean = float(np.mean(baselines[best]["times"]))
    out = {
        "completion_time_s": interval(per_seed_time),
        "miss_rate": interval(per_seed_miss),
        "ratio_to_greedy": interval([t / greedy_mean for t in per_seed_time]),
        "best_baseline": best,
        "ratio_to_best": interval([t / best_mean for t in per_seed_time]),
        "per_seed_completion_time_s": per_seed_time,
        "per_seed_miss_rate": per_seed_miss,
        "share_local_edge_cloud": np.mean([f["share"] for f in fleets], axis=0).tolist(),
        "train_wall_s": [f["train_wall_s"] for f in fleets],
    }
    if "optimum" in baselines:
        opt_mean = float(np.mean(baselines["optimum"]["times"]))
        out["ratio_to_optimum"] = interval([t / opt_mean for t in per_seed_time])
    # The objective the fleets are trained for (the reward's cost per task), beside time.
    per_seed_cost = [float(np.mean(f["costs"])) for f in fleets]
    best_cost = min(baselines, key=lambda p: baselines[p]["cost"][0])
    greedy_cost = float(np.mean(baselines["greedy"]["costs"]))
    best_cost_mean = float(np.mean(baselines[best_cost]["costs"]))
    out["cost"] = interval(per_seed_cost)
    out["cost_ratio_to_greedy"] = interval([c / greedy_cost for c in per_seed_cost])
    out["best_baseline_by_cost"] = best_cost
    out["cost_ratio_to_best"] = interval([c / best_cost_mean for c in per_seed_cost])
    out["per_seed_cost"] = per_seed_cost
    return out


def report(env_id: str, args: argparse.Namespace, rows: dict[str, Any], learned: Any) -> None:
    """Print the table and one JSON line."""
    print(
        f"{env_id}: {args.train_seeds} training seeds from {args.train_seed}, evaluation "
        f"episodes {args.seed}..{args.seed + args.episodes - 1}, mean +/- 95% half-width"
    )
    print(f"  {'policy':<12} {'completion s':>18} {'deadline misses':>20} {'cost per task':>20}")
    for policy, row in {**rows, "learned": learned}.items():
        t_mean, t_half = row["completion_time_s"]
        m_mean, m_half = row["miss_rate"]
        c_mean, c_half = row["cost"]
        print(
            f"  {policy:<12} {t_mean:9.4f} +/- {t_half:6.4f} {m_mean:10.4f} +/- {m_half:6.4f} "
            f"{c_mean:10.4f} +/- {c_half:6.4f}"
        )
    for key in (
        "ratio_to_greedy",
        "ratio_to_best",
        "ratio_to_optimum",
        "cost_ratio_to_greedy",
        "cost_ratio_to_best",
    ):
        if key in learned:
            mean, half = learned[key]
            extra = ""
            if key == "ratio_to_best":
                extra = f" ({learned['best_baseline']})"
            elif key == "cost_ratio_to_best":
                extra = f" ({learned['best_baseline_by_cost']})"
            print(f"  learned {key}{extra}: {mean:.3f} +/- {half:.3f}")
    kept = ("completion_time_s", "miss_rate", "cost")
    slim = {p: {k: r[k] for k in kept} for p, r in rows.items()}
    print(json.dumps({"env_id": env_id, "baselines": slim, "learned": learned}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", action="append", help="scenario id (repeatable)")
    parser.add_argument("--config", type=Path, help="recipe (YAML) for fleetmind train")
    parser.add_argument("--algo", help="fleetmind train --algo (default: the recipe's)")
    parser.add_argument("--steps", type=int, help="env steps per training run")
    parser.add_argument("--envs", type=int, help="env copies per training run")
    parser.add_argument("--actors", type=int, help="actor processes per training run")
    parser.add_argument("--train-arg", action="append", default=[], help="extra train flag")
    parser.add_argument("--train-seeds", type=int, default=5, help="training runs per scenario")
    parser.add_argument("--train-seed", type=int, default=1, help="first training seed")
    parser.add_argument("--episodes", type=int, default=5, help="evaluation episodes")
    parser.add_argument("--seed", type=int, default=1000, help="first evaluation seed")
    parser.add_argument("--run-root", type=Path, help="keep the runs here (default: temp)")
    parser.add_argument(
        "--reuse", action="store_true", help="evaluate runs already in --run-root, untrained"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.run_root or Path(tmp)
        for env_id in args.scenario or ["fleetmind/offload-contention"]:
            fleets = []
            for seed in range(args.train_seed, args.train_seed + args.train_seeds):
                fleet = train_and_evaluate(args, env_id, seed, root)
                print(
                    f"  {env_id} seed {seed}: {np.mean(fleet['times']):.4f} s, misses "
                    f"{np.mean(fleet['misses']):.4f}, trained in {fleet['train_wall_s']:.0f} s",
                    flush=True,
                )
                fleets.append(fleet)
            rows = measure(env_id, args.episodes, args.seed, {})
            report(env_id, args, rows, compare(fleets, rows))


if __name__ == "__main__":
    main()
