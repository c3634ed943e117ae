"""Rules, CP-SAT, right-shift repair and the clairvoyant bound: feasible and consistent."""

import pytest

from fleetmind.core.errors import ConfigError
from fleetmind.envs.scenarios.jobshop.breakdowns import (
    BreakdownModel,
    MachineLife,
    breakdown_intervals,
)
from fleetmind.envs.scenarios.jobshop.cpsat import solve_cpsat
from fleetmind.envs.scenarios.jobshop.instance import random_instance, shipped_instance
from fleetmind.envs.scenarios.jobshop.rules import RULES, dispatch_rule
from fleetmind.envs.scenarios.jobshop.schedule import check_schedule
from fleetmind.envs.scenarios.jobshop.solve import repaired_rule, solve


@pytest.mark.parametrize("rule", list(RULES))
def test_rules_are_feasible_and_never_beat_the_optimum(rule: str) -> None:
    for name in ("ta01", "ft06"):
        instance = shipped_instance(name)
        schedule = dispatch_rule(instance, rule)
        check_schedule(instance, schedule)
        assert instance.optimum is not None
        assert schedule.makespan >= instance.optimum


def test_cpsat_finds_the_optimum_of_ft06() -> None:
    result = solve_cpsat(shipped_instance("ft06"), time_limit_s=20)
    check_schedule(shipped_instance("ft06"), result.schedule)
    assert result.optimal
    assert result.schedule.makespan == result.bound == 55


def test_cpsat_on_ta01_is_consistent_with_its_optimum() -> None:
    result = solve_cpsat(shipped_instance("ta01"), time_limit_s=2)
    check_schedule(shipped_instance("ta01"), result.schedule)
    assert result.bound <= 1231 <= result.schedule.makespan


def test_breakdowns_repeat_with_their_seed_and_machines_are_independent() -> None:
    model = BreakdownModel(mean_time_between_failures=50, mean_repair_time=5)
    assert breakdown_intervals(model, 3, 4, 500) == breakdown_intervals(model, 3, 4, 500)
    assert breakdown_intervals(model, 3, 4, 500) != breakdown_intervals(model, 4, 4, 500)
    a, b = MachineLife(model, 3, 0), MachineLife(model, 3, 1)
    first_b = b.failure_at
    a.renew(7)  # a maintenance on machine 0
    assert MachineLife(model, 3, 1).failure_at == first_b
    wear = [a.wear(t) for t in (a.renewed_at, a.failure_at)]
    assert wear[0] < 0.3
    assert wear[1] > 0.7


@pytest.mark.parametrize(
    ("field", "value"),
    [("mean_time_between_failures", -1.0), ("mean_repair_time", -2.0), ("weibull_shape", 0.0)],
)
def test_a_negative_rate_is_refused(field: str, value: float) -> None:
    args = {"mean_time_between_failures": 10.0, "mean_repair_time": 1.0, field: value}
    with pytest.raises(ConfigError, match=f"{field} must be positive, got {value}"):
        BreakdownModel(**args)


def test_right_shift_repair_is_feasible_and_the_clairvoyant_bound_is_below_it() -> None:
    instance = random_instance(5, 4, seed=2)
    model = BreakdownModel.for_instance(instance, mtbf=60, mttr=15)
    for seed in range(3):
        repaired = {rule: repaired_rule(instance, rule, model, seed)[0] for rule in RULES}
        for schedule in repaired.values():
            check_schedule(instance, schedule)
            assert schedule.downtime  # the breakdowns hit
        clairvoyant = solve(instance, "cpsat", seed, model, time_limit_s=10)
        best = min(s.makespan for s in repaired.values())
        assert clairvoyant.details["bound"] <= clairvoyant.schedule.makespan <= best
        static = dispatch_rule(instance, "mwkr").makespan
        assert repaired["mwkr"].makespan >= static


def test_online_rules_under_breakdowns_are_feasible() -> None:
    instance = random_instance(6, 6, seed=1)
    model = BreakdownModel.for_instance(instance, mtbf=80, mttr=20)
    schedule = dispatch_rule(instance, "spt", model, seed=5)
    check_schedule(instance, schedule)
    assert schedule.downtime
