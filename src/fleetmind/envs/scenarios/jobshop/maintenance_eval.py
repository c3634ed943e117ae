"""Maintenance policies compared by their cost on held-out seeds.

The hand-written policies are tuned on ``tune_seeds`` and scored on
``test_seeds``: run to failure; the best fixed interval (a sweep of intervals);
the best warning threshold (a sweep of thresholds). Learned policies come in as
one :data:`Policy` per training seed; each seed's mean cost over the test seeds
is one sample of the 95% interval::

    rows = compare_policies(MaintenanceConfig(), range(0, 10), range(1000, 1020),
                            learned={"ppo": [policy_of_seed_1, policy_of_seed_2, ...]})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fleetmind.core.errors import ConfigError
from fleetmind.envs.scenarios.jobshop.maintenance import (
    MaintenanceConfig,
    Policy,
    fixed_interval,
    run_policy,
    run_to_failure,
    warning_threshold,
)
from fleetmind.envs.scenarios.jobshop.warning import SWEEP

_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228)
"""Student's t quantile 0.975 for 1..10 degrees of freedom (1.96 beyond)."""


def interval95(values: Sequence[float]) -> tuple[float, float]:
    """The mean and the half-width of its 95% t-interval (0 for one value)."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) < 2:
        return float(x.mean()), 0.0
    t = _T95[len(x) - 2] if len(x) - 1 <= len(_T95) else 1.96
    return float(x.mean()), float(t * x.std(ddof=1) / np.sqrt(len(x)))


@dataclass
class PolicyRow:
    """One policy's cost on the test seeds."""

    policy: str
    setting: str
    """What was tuned (the interval, the threshold) or how many training seeds."""
    cost_rate: float
    """Mean total cost per 1000 time units."""
    ci95: float
    """Half-width of the 95% interval (over test episodes; over training seeds if learned)."""
    failures: float
    """Failures per episode."""
    maintenances: float
    """Maintenances per episode."""
    samples: list[float]

    def to_json(self) -> dict[str, Any]:
        return vars(self).copy()


def _summary(infos: list[dict[str, Any]]) -> tuple[list[float], float, float]:
    rates = [float(i["cost_rate"]) for i in infos]
    failures = float(np.mean([i["failures"] for i in infos]))
    return rates, failures, float(np.mean([i["maintenances"] for i in infos]))


def _row(name: str, setting: str, infos: list[dict[str, Any]]) -> PolicyRow:
    rates, failures, maintenances = _summary(infos)
    return PolicyRow(name, setting, *interval95(rates), failures, maintenances, rates)


def _mean_rate(policy: Policy, seeds: Sequence[int], config: MaintenanceConfig) -> float:
    return float(np.mean(_summary(run_policy(policy, seeds, config))[0]))


def interval_grid(config: MaintenanceConfig) -> list[int]:
    """The swept intervals: every second reading up to 2.5 mean lives."""
    step = 2 * config.warning.sample_every
    return list(range(step, int(2.5 * config.model.mean_time_between_failures) + 1, step))


def compare_policies(
    config: MaintenanceConfig,
    tune_seeds: Sequence[int],
    test_seeds: Sequence[int],
    learned: Mapping[str, Sequence[Policy]] | None = None,
    intervals: Sequence[int] | None = None,
) -> list[PolicyRow]:
    """Every policy's row; ConfigError for an empty seed range."""
    for name, seeds in (("tune", tune_seeds), ("test", test_seeds)):
        if len(seeds) == 0:
            raise ConfigError(f"the {name} seed range is empty; give A:B with A < B")
    grid = list(intervals or interval_grid(config))
    best_interval = min(grid, key=lambda i: _mean_rate(fixed_interval(i), tune_seeds, config))
    best_threshold = min(SWEEP, key=lambda t: _mean_rate(warning_threshold(t), tune_seeds, config))
    rows = [
        _row("run-to-failure", "-", run_policy(run_to_failure, test_seeds, config)),
        _row(
            "fixed interval", f"every {best_interval}",
            run_policy(fixed_interval(best_interval), test_seeds, config),
        ),
        _row(
            "warning threshold", f"p >= {best_threshold}",
            run_policy(warning_threshold(best_threshold), test_seeds, config),
        ),
    ]  # fmt: skip
    for name, policies in (learned or {}).items():
        per_seed = [_summary(run_policy(p, test_seeds, config)) for p in policies]
        means = [float(np.mean(rates)) for rates, _, _ in per_seed]
        failures = float(np.mean([f for _, f, _ in per_seed]))
        maintenances = float(np.mean([k for _, _, k in per_seed]))
        setting = f"{len(policies)} training seed{'s' if len(policies) != 1 else ''}"
        rows.append(PolicyRow(name, setting, *interval95(means), failures, maintenances, means))
    return rows
