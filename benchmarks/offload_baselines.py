"""Every offloading baseline on every offloading scenario, with 95% intervals over seeds.

Runs one episode per seed (seeds ``--seed`` .. ``--seed + --seeds - 1``) of each
baseline policy (``optimum`` only where a scenario has at most 10 vehicles) and
prints the mean completion time and the deadline-miss rate, each as the mean over
the seeds +/- the half-width of its 95% t-interval, then one JSON line per
scenario with the same numbers.

    .venv/bin/python benchmarks/offload_baselines.py [--seeds 5] [--seed 1000]
        [--scenario fleetmind/offload-toy ...] [--set episode_steps=100 ...]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

import numpy as np

from fleetmind.cli.baseline_cmd import parse_overrides
from fleetmind.envs.scenarios.offload.catalog import offload_env_ids, scenario_config
from fleetmind.envs.scenarios.offload.evaluation import run_baseline
from fleetmind.envs.scenarios.offload.policies import POLICIES
from fleetmind.envs.scenarios.offload.static_batch import MAX_BATCH

# Two-sided 95% quantiles of Student's t for 1..10 degrees of freedom.
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228)


def interval(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of the 95% t-interval of ``values``."""
    data = np.asarray(values, dtype=np.float64)
    if len(data) < 2:
        return float(data.mean()), math.nan
    df = len(data) - 1
    t = _T95[df - 1] if df <= len(_T95) else 1.96
    return float(data.mean()), float(t * data.std(ddof=1) / math.sqrt(len(data)))


def episode_costs(
    env_id: str, episodes: list[dict[str, Any]], overrides: dict[str, Any]
) -> list[float]:
    """Each episode's mean cost per task, the objective the scenario's reward counts:
    completion time + ``miss_penalty_s`` x missed deadline + ``energy_weight`` x joules
    (every term a mean over the same completed tasks)."""
    config = scenario_config(env_id, overrides)
    return [
        e["mean_completion_time_s"]
        + config.miss_penalty_s * e["deadline_miss_rate"]
        + config.energy_weight * e["mean_energy_j"]
        for e in episodes
    ]


def measure(env_id: str, seeds: int, seed: int, overrides: dict[str, Any]) -> dict[str, Any]:
    """Per policy: mean and 95% half-width of completion time, miss rate and cost per
    task, and the per-episode values (``times``, ``misses``, ``costs``)."""
    vehicles = scenario_config(env_id, overrides).vehicles
    rows: dict[str, Any] = {}
    for policy in POLICIES:
        if policy == "optimum" and vehicles > MAX_BATCH:
            continue
        start = time.perf_counter()
        result = run_baseline(env_id, policy, seeds, seed, overrides)
        times = [e["mean_completion_time_s"] for e in result["episodes"]]
        misses = [e["deadline_miss_rate"] for e in result["episodes"]]
        costs = episode_costs(env_id, result["episodes"], overrides)
        rows[policy] = {
            "completion_time_s": interval(times),
            "miss_rate": interval(misses),
            "cost": interval(costs),
            "times": times,
            "misses": misses,
            "costs": costs,
            "wall_s": time.perf_counter() - start,
        }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="episodes (seeds) per baseline")
    parser.add_argument("--seed", type=int, default=1000, help="first seed")
    parser.add_argument("--scenario", action="append", help="scenario id (default: all)")
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE override")
    args = parser.parse_args()
    overrides = parse_overrides(args.set)
    for env_id in args.scenario or offload_env_ids():
        rows = measure(env_id, args.seeds, args.seed, overrides)
        print(f"{env_id}: {args.seeds} seeds from {args.seed}, mean +/- 95% half-width")
        print(f"  {'policy':<12} {'completion s':>18} {'deadline misses':>20} {'wall s':>7}")
        for policy, row in rows.items():
            t_mean, t_half = row["completion_time_s"]
            m_mean, m_half = row["miss_rate"]
            print(
                f"  {policy:<12} {t_mean:9.4f} +/- {t_half:6.4f} "
                f"{m_mean:10.4f} +/- {m_half:6.4f} {row['wall_s']:7.1f}"
            )
        print(json.dumps({"env_id": env_id, "seeds": args.seeds, "baselines": rows}))


if __name__ == "__main__":
    main()
