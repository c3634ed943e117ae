"""The learned dispatcher's env: contested queues only, slot 0 is MWKR, one size for all."""

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from fleetmind.core.errors import ConfigError
from fleetmind.envs.scenarios.jobshop.breakdowns import BreakdownModel
from fleetmind.envs.scenarios.jobshop.catalog import make_queue_env
from fleetmind.envs.scenarios.jobshop.dispatch import Dispatcher
from fleetmind.envs.scenarios.jobshop.instance import random_instance, shipped_instance
from fleetmind.envs.scenarios.jobshop.rules import dispatch_rule
from fleetmind.envs.scenarios.jobshop.schedule import check_schedule
from fleetmind.envs.scenarios.jobshop.slots import (
    JOB_FEATURES,
    OBSERVATION_SIZE,
    SLOTS,
    JobShopSlotEnv,
    SlotConfig,
    SlotDispatch,
    dispatch_slots,
)


@pytest.mark.parametrize(
    "instance",
    [shipped_instance("ta01"), shipped_instance("ft06"), random_instance(20, 15, 3)],
    ids=lambda i: i.name,
)
def test_always_slot_zero_builds_mwkr_schedule_exactly(instance: object) -> None:
    schedule = dispatch_slots(instance, lambda obs: 0)  # type: ignore[arg-type]
    check_schedule(instance, schedule)  # type: ignore[arg-type]
    mwkr = dispatch_rule(instance, "mwkr")  # type: ignore[arg-type]

    def key(op: object) -> tuple[int, int]:
        return op.job, op.index  # type: ignore[attr-defined]

    assert sorted(schedule.operations, key=key) == sorted(mwkr.operations, key=key)


def test_only_contested_queues_are_asked_and_every_choice_is_a_different_schedule() -> None:
    instance = shipped_instance("ta01")
    episode = SlotDispatch(instance)
    decisions = 0
    while not episode.done:
        queue = episode.queue
        assert len(queue) >= 2
        machines = instance.machines[queue, episode.shop.next_op[queue]]
        assert set(machines.tolist()) == {episode.machine}
        work = [episode.shop.remaining_work()[j] for j in queue]
        assert work == sorted(work, reverse=True)
        episode.choose(0)
        decisions += 1
    # far fewer than the 225 operations: uncontested starts are settled by the env
    assert 20 < decisions < 120
    last = dispatch_slots(instance, lambda obs: SLOTS - 1)
    check_schedule(instance, last)
    assert last.makespan != dispatch_slots(instance, lambda obs: 0).makespan


def test_observation_has_one_size_for_every_instance_and_pads_empty_slots() -> None:
    for jobs, machines in [(6, 6), (15, 15), (30, 20)]:
        env = JobShopSlotEnv(SlotConfig(jobs=jobs, machines=machines))
        obs, info = env.reset(seed=1)
        assert obs.shape == (OBSERVATION_SIZE,)
        assert obs.dtype == np.float32
        assert env.observation_space.contains(obs)
        shown = min(info["queue"], SLOTS)
        valid = obs[: SLOTS * JOB_FEATURES].reshape(SLOTS, JOB_FEATURES)[:, 0]
        assert valid.tolist() == [1.0] * shown + [0.0] * (SLOTS - shown)
        assert not obs[shown * JOB_FEATURES : SLOTS * JOB_FEATURES].any()


def test_rewards_are_the_bound_growth_and_sum_to_the_gap_to_the_lower_bound() -> None:
    env = make_queue_env("fleetmind/jobshop-queues-15x15", {"instance": "ta02"})
    env.reset(seed=0)
    total, done, flagged = 0.0, False, 0
    while not done:
        _, reward, done, truncated, info = env.step(SLOTS - 1)
        assert not truncated
        total += reward
        flagged += info["invalid_action"]
    instance = shipped_instance("ta02")
    assert total == pytest.approx(1 - info["makespan"] / instance.lower_bound())
    assert env.episode is not None
    assert env.episode.bound() == info["makespan"]
    assert flagged > 0  # most queues are shorter than eight
    with pytest.raises(ConfigError, match="after the episode ended"):
        env.step(0)


def test_gymnasium_accepts_the_env_and_breakdowns_give_feasible_schedules() -> None:
    check_env(JobShopSlotEnv(SlotConfig(jobs=6, machines=6)), skip_render_check=True)
    instance = shipped_instance("ta03")
    model = BreakdownModel.for_instance(instance)
    schedule = dispatch_slots(instance, lambda obs: 1, model, seed=4)
    check_schedule(instance, schedule)
    assert schedule.downtime


def test_dispatch_all_starts_jobs_at_once_or_refuses_a_clash() -> None:
    instance = shipped_instance("ft06")  # jobs 0, 2, 4 start on machine 2; 1, 3, 5 on 1
    assert instance.machines[:4, 0].tolist() == [2, 1, 2, 1]
    with pytest.raises(ConfigError, match="job 2 waits for machine 2, already started now"):
        Dispatcher(instance).dispatch_all([0, 2])
    shop = Dispatcher(instance)
    shop.dispatch_all([0, 1])
    assert shop.running_start[[1, 2]].tolist() == [0, 0]
    assert shop.running_end[[1, 2]].tolist() == instance.durations[[1, 0], 0].tolist()
    with pytest.raises(ConfigError, match="job 9 cannot start"):
        shop.dispatch_all([9])


def test_the_bound_never_falls_without_breakdowns_and_never_exceeds_the_makespan() -> None:
    instance = random_instance(10, 8, 5)
    rng = np.random.default_rng(0)
    episode = SlotDispatch(instance)
    bounds = [instance.lower_bound(), episode.bound()]
    while not episode.done:
        obs = episode.observe()
        growth = obs[: SLOTS * JOB_FEATURES].reshape(SLOTS, JOB_FEATURES)[:, 12]
        slot = int(rng.integers(min(len(episode.queue), SLOTS)))
        before = episode.bound()
        episode.choose(slot)
        # the lookahead feature foretells the growth of the bound that the choice causes
        # before time moves on (a later event may only raise it further)
        assert episode.bound() >= before + growth[slot] * instance.lower_bound() - 1e-6
        bounds.append(episode.bound())
    assert bounds == sorted(bounds)
    assert bounds[-1] == episode.schedule().makespan


def test_rule_baselines_run_on_the_queue_ids_shops() -> None:
    from fleetmind.envs.registry import lookup_env

    entry = lookup_env("fleetmind/jobshop-queues-15x15-breakdowns")
    assert entry.baselines is not None
    result = entry.baselines.run_policy(entry.env_id, "mwkr", episodes=2, seed=11)
    env = make_queue_env(entry.env_id)
    for k, row in enumerate(result["episodes"]):
        env.reset(seed=11 + k)
        done, info = False, {}
        while not done:  # slot 0 is MWKR's choice: the same shop gives the same makespan
            _, _, done, _, info = env.step(0)
        assert row["makespan"] == info["makespan"]


def test_bad_queue_scenarios_are_refused_with_what_to_fix() -> None:
    from fleetmind.core.errors import FleetmindError

    with pytest.raises(ConfigError, match="jobs=0 and machines=15 must be positive"):
        SlotConfig(jobs=0)
    with pytest.raises(FleetmindError, match="unknown job-shop queue scenario 'fleetmind/nope'"):
        make_queue_env("fleetmind/nope")
    with pytest.raises(FleetmindError, match="colour"):
        make_queue_env("fleetmind/jobshop-queues-15x15", {"colour": "red"})
    with pytest.raises(ConfigError, match="call reset"):
        JobShopSlotEnv().step(0)
