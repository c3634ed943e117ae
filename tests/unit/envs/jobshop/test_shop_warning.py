"""The warning on the shop floor: a regular sensor grid, feasible schedules, fewer aborts."""

import numpy as np
import pytest

from fleetmind.core.errors import ConfigError
from fleetmind.envs.scenarios.jobshop.breakdowns import BreakdownModel
from fleetmind.envs.scenarios.jobshop.dispatch import Dispatcher
from fleetmind.envs.scenarios.jobshop.instance import shipped_instance
from fleetmind.envs.scenarios.jobshop.rules import dispatch_rule
from fleetmind.envs.scenarios.jobshop.schedule import check_schedule
from fleetmind.envs.scenarios.jobshop.shop_warning import (
    MachineMonitor,
    dispatch_with_warning,
    shop_predictor,
)

TA01 = shipped_instance("ta01")
MODEL = BreakdownModel.for_instance(TA01)


def test_the_monitor_reads_each_life_on_a_regular_grid() -> None:
    shop = Dispatcher(TA01, MODEL, seed=0)
    monitor = MachineMonitor(shop, shop_predictor())
    seen = []
    while not shop.done:
        probabilities = monitor.probabilities()
        assert ((probabilities >= 0) & (probabilities <= 1)).all()
        assert (probabilities[shop.machine_down()] == 0).all()
        seen.append(probabilities.max())
        shop.dispatch(int(np.flatnonzero(shop.candidates())[0]))
    assert max(seen) > 0.5  # some failure was seen coming
    monitor.probabilities()  # read up to the end
    for machine, life in enumerate(shop.lives):
        if life.renewed_at <= shop.now and not life.is_down(shop.now):
            grid = (min(shop.now, life.failure_at - 1) - life.renewed_at) // monitor.every + 1
            assert len(monitor._readings[machine]) == grid


def test_warned_maintenance_is_feasible_and_aborts_less_work() -> None:
    aborted_alone, aborted_warned, ratios = 0, 0, []
    for seed in range(3):
        alone = Dispatcher(TA01, MODEL, seed)
        while not alone.done:
            scores = np.where(alone.candidates(), -alone.remaining_work(), np.inf)
            alone.dispatch(int(np.argmin(scores)))
        schedule, shop = dispatch_with_warning(TA01, "mwkr", MODEL, seed, threshold=0.3)
        check_schedule(TA01, schedule)
        assert any(d.kind == "maintenance" for d in schedule.downtime)
        aborted_alone += alone.aborted
        aborted_warned += shop.aborted
        ratios.append(schedule.makespan / dispatch_rule(TA01, "mwkr", MODEL, seed).makespan)
    assert aborted_warned < aborted_alone
    assert np.mean(ratios) < 1


def test_a_fixed_age_maintains_on_time_and_a_shop_without_breakdowns_is_refused() -> None:
    schedule, _ = dispatch_with_warning(TA01, "spt", MODEL, 0, interval=500)
    check_schedule(TA01, schedule)
    assert any(d.kind == "maintenance" for d in schedule.downtime)
    with pytest.raises(ConfigError, match="break down"):
        MachineMonitor(Dispatcher(TA01), shop_predictor())
