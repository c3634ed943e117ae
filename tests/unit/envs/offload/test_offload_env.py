"""The offloading env: PettingZoo contract, seeding, the simulator's rules, bad input."""

from __future__ import annotations

import re

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

from fleetmind.core.errors import ConfigError, InvalidInputError, UnknownNameError
from fleetmind.envs.registry import lookup_env, make_team_vector_env
from fleetmind.envs.scenarios.offload import OffloadConfig, OffloadEnv, make_offload_env
from fleetmind.envs.scenarios.offload.catalog import offload_env_ids
from fleetmind.envs.scenarios.offload.simulator import EDGE, OffloadSimulator
from fleetmind.envs.scenarios.offload.static_batch import batch_from_simulator, completion_times

SHORT = {"episode_steps": 40}


@pytest.mark.parametrize("env_id", ["fleetmind/offload-toy", "fleetmind/offload-contention"])
def test_parallel_api(env_id: str) -> None:
    parallel_api_test(make_offload_env(env_id, SHORT), num_cycles=60)


def test_parallel_seed() -> None:
    parallel_seed_test(lambda: make_offload_env("fleetmind/offload-network-bound", SHORT))


def _play(env: OffloadEnv, seed: int) -> tuple[dict[str, float | int], float]:
    observations, _ = env.reset(seed=seed)
    total = 0.0
    step = 0
    while env.agents:
        for obs in observations.values():
            assert env.observation_space("vehicle_0").contains(obs)
        assert env.state_space.contains(env.state())
        _, rewards, _, _, infos = env.step({a: (step + i) % 3 for i, a in enumerate(env.agents)})
        total += sum(rewards.values())
        step += 1
    assert "offload_metrics" in infos["vehicle_0"]
    return env.offload_metrics().to_dict(), total


def test_same_seed_same_episode_and_other_seed_differs() -> None:
    env = make_offload_env("fleetmind/offload-contention", SHORT)
    first, again, other = _play(env, 5), _play(env, 5), _play(env, 6)
    assert first == again
    assert first != other


def test_every_placed_task_completes_and_rewards_add_up_to_the_costs() -> None:
    config = OffloadConfig(vehicles=5, edge_servers=2, episode_steps=60, energy_weight=0.0,
                           miss_penalty_s=0.0)  # fmt: skip
    env = OffloadEnv(config)
    metrics, team_return = _play(env, 1)
    totals = env.sim.totals
    assert totals.placed.sum() == totals.tasks == metrics["tasks"] > 0
    assert len(env.sim.tasks) == 0
    # with no miss penalty and no energy weight the cost is the completion time alone
    assert team_return == pytest.approx(-totals.time_s)
    shares = metrics["share_local"] + metrics["share_edge"] + metrics["share_cloud"]
    assert shares == pytest.approx(1.0)


def test_team_reward_weight_shares_the_fleets_mean() -> None:
    env = OffloadEnv(OffloadConfig(vehicles=4, team_reward_weight=1.0, episode_steps=30))
    env.reset(seed=0)
    while env.agents:
        _, rewards, _, _, _ = env.step(dict.fromkeys(env.agents, 0))
        assert len(set(rewards.values())) == 1


def test_edge_servers_are_first_come_first_served_as_the_static_model_says() -> None:
    # Two implementations of the same rules: the simulator's vectorised queues and the
    # static batch's task-by-task loop must give the same completion times.
    config = OffloadConfig(vehicles=12, edge_servers=2, episode_steps=60, edge_cpu_hz=6e9,
                           arrival_rate=4.0, bandwidth_hz=2e6)  # fmt: skip
    sim = OffloadSimulator(config)
    rng = np.random.default_rng(2)
    sim.reset(rng)
    flying = 0
    while flying == 0:  # until an upload to an edge server is under way
        sim.step(rng.integers(0, 3, config.vehicles))
        flying = int(((sim.tasks["dest"] == EDGE) & np.isnan(sim.tasks["finish"])).sum())
    sim.force_tasks(np.arange(config.vehicles))
    batch = batch_from_simulator(sim)
    assert len(batch.inflight_ready) > 0  # uploads on their way that new tasks can overtake
    places = rng.integers(0, 3, config.vehicles)
    places[:6] = EDGE
    predicted = completion_times(batch, places)[0].sum()
    t = sim.tasks
    known = ~np.isnan(t["finish"])
    predicted += (t["finish"][known] - t["arrival"][known]).sum()
    done_before = sim.totals.time_s
    sim.arrival_prob[:] = 0.0  # nothing new arrives: the queues only drain
    sim.step(places)
    while not sim.done:
        sim.step(np.zeros(config.vehicles, np.int64))
    assert sim.totals.time_s - done_before == pytest.approx(predicted, rel=1e-9)


def test_vehicles_move_inside_the_area_and_links_follow() -> None:
    env = make_offload_env("fleetmind/offload-toy", {"speed_mps": 30.0})
    env.reset(seed=0)
    rates = env.sim.rates.copy()
    for _ in range(50):
        env.step(dict.fromkeys(env.agents, 0))
        assert (env.sim.positions >= 0).all()
        assert (env.sim.positions <= env.config.area_m).all()
    assert not np.allclose(rates, env.sim.rates)


def test_edge_reports_are_stale() -> None:
    env = make_offload_env("fleetmind/offload-contention", SHORT)  # reports every 1 s = 5 steps
    env.reset(seed=0)
    seen = []
    for _ in range(10):
        env.step(dict.fromkeys(env.agents, EDGE))
        seen.append((env.sim.report_time, env.sim.reported_backlog.copy()))
    assert [round(t, 6) for t, _ in seen] == [0.0] * 4 + [1.0] * 5 + [2.0]
    assert (seen[4][1] > 0).any()  # what the fleet learns a second late


def test_the_ids_are_registered_as_teams() -> None:
    for env_id in offload_env_ids():
        entry = lookup_env(env_id)
        assert entry.is_team
        assert not entry.has_single_agent_form
        assert entry.family == "offloading"
        assert entry.baselines is not None
        assert entry.measures is not None
    team = make_team_vector_env("fleetmind/offload-50", 2)
    assert (team.num_envs, team.num_agents) == (2, 50)
    team.close()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"edge_servers": 0}, "edge_servers=0 is invalid: use a whole number from 1 to 64"),
        ({"vehicles": 0}, "vehicles=0 is invalid"),
        ({"arrival_rate": -1.0}, "arrival_rate=-1.0 must be zero or a positive number"),
        ({"bandwidth_hz": -1e6}, "bandwidth_hz=-1000000.0 must be a positive number"),
        ({"arrival_rates": [1.0, 2.0, 3.0]}, "3 values for 2 vehicles"),
        ({"arrival_rates": [1.0, -2.0]}, "arrival_rates[1]=-2.0"),
        ({"arrival_rate": 8.0}, "more than one task per step"),
        ({"size_spread": 1.0}, "size_spread=1.0 must be in [0, 1)"),
        ({"task_types": []}, "task_types is empty"),
        ({"task_types": [{"cycles": -1}]}, "cycles=-1.0 must be positive"),
        ({"edge_cpus": 3}, "edge_cpus"),
    ],
)
def test_bad_config_is_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        make_offload_env("fleetmind/offload-toy", overrides)


def test_unknown_scenario_has_close_matches() -> None:
    with pytest.raises(UnknownNameError, match="Close matches: fleetmind/offload-toy"):
        make_offload_env("fleetmind/offload-tay")


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        ({"vehicle_9": 0}, "unknown agent 'vehicle_9'"),
        ({"vehicle_0": 3}, "use 0 \\(local\\), 1 \\(edge\\) or 2 \\(cloud\\)"),
        ({"vehicle_0": "x"}, "is not a place number"),
    ],
)
def test_bad_actions(actions: dict[str, object], message: str) -> None:
    env = make_offload_env("fleetmind/offload-toy")
    env.reset(seed=0)
    with pytest.raises(InvalidInputError, match=message):
        env.step(actions)  # type: ignore[arg-type]


def test_step_after_the_end() -> None:
    env = make_offload_env("fleetmind/offload-toy", {"episode_steps": 1})
    env.reset(seed=0)
    env.step({})
    with pytest.raises(InvalidInputError, match="call reset"):
        env.step({})
