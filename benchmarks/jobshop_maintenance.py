"""Fault warning and maintenance: a PPO policy trained with fleetmind against the baselines.

1. The fault warning is fitted on the run-to-failure lives of seeds 0..19 and
   scored on held-out seeds 100..119 (what ``fleetmind jobshop warn`` prints).
2. PPO trains on ``fleetmind/maintenance-v0`` once per training seed (1..N, as
   ``fleetmind train`` would), observing the warning's probability.
3. Run-to-failure, the best fixed interval and the best warning threshold (both
   tuned on seeds 0..9) and the trained policies are scored on held-out seeds
   1000..1019 (which training never uses as episode seeds); the learned row's 95%
   interval is over the training seeds.
4. On the shop floor: MWKR dispatching ta01-ta10 online under breakdowns, alone,
   maintaining a free machine at a fixed age, or when its warning fires (age and
   threshold tuned on breakdown seeds 0-1, scored on 100-102): makespan over
   MWKR alone's.

    nice -n 19 .venv/bin/python benchmarks/jobshop_maintenance.py [--seeds 5] [--steps 40000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import fleetmind
from fleetmind.algos.loading import load_agent
from fleetmind.envs.scenarios.jobshop.breakdowns import BreakdownModel
from fleetmind.envs.scenarios.jobshop.instance import shipped_instance
from fleetmind.envs.scenarios.jobshop.maintenance import MaintenanceConfig, Policy
from fleetmind.envs.scenarios.jobshop.maintenance_eval import compare_policies, interval95
from fleetmind.envs.scenarios.jobshop.rules import dispatch_rule
from fleetmind.envs.scenarios.jobshop.schedule import check_schedule
from fleetmind.envs.scenarios.jobshop.shop_warning import dispatch_with_warning
from fleetmind.envs.scenarios.jobshop.warning import (
    FaultPredictor,
    WarningConfig,
    evaluate_warning,
    reference_model,
)

ENV_ID = "fleetmind/maintenance-v0"


def warning_figures() -> dict[str, Any]:
    model = reference_model()
    predictor = FaultPredictor.fit(model, WarningConfig.for_model(model), range(0, 20))
    result = evaluate_warning(predictor, range(100, 120)).to_json()
    row = {k: result[k] for k in ("threshold", "precision", "recall", "lead_mean", "lead_median")}
    print("fault warning (train seeds 0..19, test seeds 100..119, right within "
          f"{result['horizon']} time units): {json.dumps(row)}")  # fmt: skip
    for r in result["sweep"][::2]:
        print(f"  p >= {r['threshold']:.2f}: precision {r['precision']:.3f} recall "
              f"{r['recall']:.3f} median lead {r['lead_median']}")  # fmt: skip
    return result


def train_policies(root: Path, seeds: int, steps: int, envs: int) -> list[Policy]:
    policies = []
    for seed in range(1, seeds + 1):
        start = time.perf_counter()
        result = fleetmind.train(
            ENV_ID, algo="ppo", seed=seed, steps=steps, envs=envs,
            run_dir=root / f"seed{seed}", force=True, progress=False,
        )  # fmt: skip
        agent = load_agent(result.run_dir).agent
        policies.append(lambda env, obs, agent=agent: int(agent.act(obs)))
        wall = time.perf_counter() - start
        print(f"  trained seed {seed}: {result.env_steps} steps in {wall:.1f} s, "
              f"return {result.episode_return_mean:.2f}")  # fmt: skip
    return policies


THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.75)
AGES = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0)
"""Fixed maintenance ages, in mean lives."""


def shop_ratios(seeds: range, threshold: float | None, age: float | None) -> list[float]:
    """Makespan of MWKR with maintenance over MWKR alone, per instance and seed."""
    out = []
    for k in range(1, 11):
        instance = shipped_instance(f"ta{k:02d}")
        model = BreakdownModel.for_instance(instance)
        interval = None if age is None else round(age * model.mean_time_between_failures)
        for seed in seeds:
            alone = dispatch_rule(instance, "mwkr", model, seed).makespan
            schedule, _ = dispatch_with_warning(instance, "mwkr", model, seed, threshold, interval)
            check_schedule(instance, schedule)
            out.append(schedule.makespan / alone)
    return out


def shop_floor() -> None:
    tune, test = range(0, 2), range(100, 103)
    best_age = min(AGES, key=lambda a: float(np.mean(shop_ratios(tune, None, a))))
    best_p = min(THRESHOLDS, key=lambda p: float(np.mean(shop_ratios(tune, p, None))))
    print(f"\nMWKR online under breakdowns on ta01-ta10, seeds {test[0]}..{test[-1]}: "
          "makespan over MWKR alone (95% over the 30 runs)")  # fmt: skip
    for name, p, age in (("fixed age", None, best_age), ("warning", best_p, None),
                         ("warning, F1 threshold", None, None)):  # fmt: skip
        mean, half = interval95(shop_ratios(test, p, age))
        setting = f"age {age} lives" if age else f"p >= {p}" if p else "p >= its own"
        print(f"  MWKR + {name:<22} {setting:<14} {mean:.3f} ± {half:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="training seeds (1..N)")
    parser.add_argument("--steps", type=int, default=40_000, help="PPO steps per training seed")
    parser.add_argument("--envs", type=int, default=8, help="env copies per training run")
    parser.add_argument("--test-episodes", type=int, default=20, help="held-out seeds 1000..")
    args = parser.parse_args()
    start = time.perf_counter()
    warning_figures()
    config = MaintenanceConfig()
    with tempfile.TemporaryDirectory(prefix="fm-maintenance-") as root:
        policies = train_policies(Path(root), args.seeds, args.steps, args.envs)
        test = range(1000, 1000 + args.test_episodes)
        rows = compare_policies(config, range(0, 10), test, {"PPO (fleetmind)": policies})
    costs = config.costs
    print(f"\ncost per 1000 time units, seeds 1000..{test[-1]} (horizon {config.horizon}; "
          f"downtime {costs.downtime}/unit, repair {costs.repair}, maintenance "
          f"{costs.maintenance})")  # fmt: skip
    print(f"{'policy':<20} {'setting':<18} {'cost ± 95%':>16} {'failures':>9} {'maint.':>7}")
    for row in rows:
        cost = f"{row.cost_rate:.1f} ± {row.ci95:.1f}"
        print(f"{row.policy:<20} {row.setting:<18} {cost:>16} {row.failures:>9.1f} "
              f"{row.maintenances:>7.1f}")  # fmt: skip
    by_name = {row.policy: row for row in rows}
    learned = by_name["PPO (fleetmind)"].samples
    for base in ("run-to-failure", "fixed interval", "warning threshold"):
        ratio, half = interval95([x / by_name[base].cost_rate for x in learned])
        print(f"PPO / {base}: {ratio:.3f} ± {half:.3f} (95% over training seeds)")
    print(json.dumps({"learned_per_seed": [round(x, 2) for x in learned],
                      "rows": [r.to_json() | {"samples": None} for r in rows]}))  # fmt: skip
    shop_floor()
    print(f"wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
