"""The one-machine maintenance env: costs as stated, and the baselines it is compared with."""

import numpy as np
import pytest

from fleetmind.core.errors import ConfigError
from fleetmind.envs.scenarios.jobshop.maintenance import (
    MAINTAIN,
    RUN,
    MaintenanceConfig,
    MaintenanceCosts,
    MaintenanceEnv,
    Policy,
    fixed_interval,
    run_policy,
    run_to_failure,
    warning_threshold,
)
from fleetmind.envs.scenarios.jobshop.maintenance_eval import compare_policies, interval95

SHORT = MaintenanceConfig(horizon=5000)


def test_the_rewards_add_up_to_the_stated_costs() -> None:
    env = MaintenanceEnv(SHORT)
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    total, done, steps = 0.0, False, 0
    while not done:
        obs, reward, terminated, truncated, info = env.step(RUN if steps % 30 else MAINTAIN)
        total += reward
        steps += 1
        done = terminated or truncated
    costs, model = SHORT.costs, SHORT.model
    assert info["failures"] > 0
    assert info["maintenances"] > 0
    assert -total * SHORT.failure_cost == pytest.approx(info["total_cost"])
    maintained = info["maintenances"] * (costs.maintenance + model.maintenance_time)
    repaired = info["total_cost"] - maintained
    assert repaired >= info["failures"] * (costs.repair + 1)
    assert info["cost_rate"] == pytest.approx(1000 * info["total_cost"] / env.now)


def test_a_maintenance_renews_the_machine_at_its_stated_cost() -> None:
    env = MaintenanceEnv(SHORT)
    env.reset(seed=0)
    env.step(RUN)
    _, reward, _, _, info = env.step(MAINTAIN)
    expected = SHORT.costs.maintenance + SHORT.costs.downtime * SHORT.model.maintenance_time
    assert -reward * SHORT.failure_cost == pytest.approx(expected)
    assert env.age == 0
    assert info["maintenances"] == 1


def test_warnings_beat_intervals_which_beat_running_to_failure() -> None:
    seeds = range(1000, 1004)

    def rate(policy: Policy) -> float:
        return float(np.mean([info["cost_rate"] for info in run_policy(policy, seeds, SHORT)]))

    never, interval, warned = (
        rate(run_to_failure),
        rate(fixed_interval(600)),
        rate(warning_threshold(0.6)),
    )
    assert warned < interval < never


def test_compare_policies_tunes_on_some_seeds_and_scores_on_others() -> None:
    rows = compare_policies(
        SHORT, range(0, 2), range(1000, 1003), {"never": [run_to_failure, run_to_failure]},
        intervals=[300, 600, 900],
    )  # fmt: skip
    names = [row.policy for row in rows]
    assert names == ["run-to-failure", "fixed interval", "warning threshold", "never"]
    assert rows[1].setting.startswith("every ")
    assert rows[3].cost_rate == pytest.approx(rows[0].cost_rate)
    assert rows[3].ci95 == 0.0
    assert rows[3].setting == "2 training seeds"
    assert rows[0].maintenances == 0
    with pytest.raises(ConfigError, match="test seed range is empty"):
        compare_policies(SHORT, range(0, 2), range(0), intervals=[300])


def test_interval95_is_a_student_t_interval() -> None:
    mean, half = interval95([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert half == pytest.approx(4.303 * 1.0 / np.sqrt(3))
    assert interval95([5.0]) == (5.0, 0.0)


@pytest.mark.parametrize("field", ["downtime", "repair", "maintenance"])
def test_negative_costs_are_refused(field: str) -> None:
    with pytest.raises(ConfigError, match=f"{field} must be >= 0, got -1.0"):
        MaintenanceCosts(**{field: -1.0})


def test_a_bad_maintenance_config_is_refused() -> None:
    with pytest.raises(ConfigError, match="horizon must be >= 1"):
        MaintenanceConfig(horizon=0)
    with pytest.raises(ConfigError, match="empty range"):
        MaintenanceConfig(warning_seeds=(3, 3))
