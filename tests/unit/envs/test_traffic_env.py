"""The built-in traffic simulator: PettingZoo contract, seeding, dynamics, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

from fleetmind.core.errors import ConfigError, InvalidInputError, UnknownNameError
from fleetmind.envs.scenarios.traffic import (
    DemandConfig,
    TrafficConfig,
    TrafficEnv,
    make_traffic_env,
    traffic_env_ids,
)
from fleetmind.envs.scenarios.traffic.network import NUM_PHASES, build_grid

SHORT = 300  # simulated seconds: 60 env steps


def _env(**kwargs: object) -> TrafficEnv:
    kwargs.setdefault("episode_seconds", SHORT)
    return TrafficEnv(TrafficConfig(**kwargs))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [{"rows": 1, "cols": 1}, {"rows": 2, "cols": 3, "neighbour_obs": True}, {"rows": 4, "cols": 4}],
)
def test_parallel_api(kwargs: dict[str, object]) -> None:
    parallel_api_test(_env(**kwargs), num_cycles=80)


def test_parallel_seed() -> None:
    parallel_seed_test(lambda: _env(rows=2, cols=2))


def _play(env: TrafficEnv, seed: int, phase_of_step: int = 4) -> dict[str, float | int]:
    env.reset(seed=seed)
    step = 0
    while env.agents:
        phase = (step // phase_of_step) % NUM_PHASES
        env.step(dict.fromkeys(env.agents, phase))
        step += 1
    return env.traffic_metrics().to_dict()


def test_same_seed_same_episode_and_other_seed_differs() -> None:
    env = _env(rows=2, cols=2)
    first, again, other = _play(env, 5), _play(env, 5), _play(env, 6)
    assert first == again
    assert first != other


def test_vehicles_are_conserved() -> None:
    env = _env(rows=3, cols=3, demand=DemandConfig(profile="rush-hour"))
    env.reset(seed=1)
    sim = env.sim
    for step in range(50):
        env.step(dict.fromkeys(env.agents, (step // 3) % NUM_PHASES))
        inside = int(sim.queue.sum() + sim.roads.sum() + sim.backlog.sum())
        assert sim.totals.generated == inside + sim.totals.exited


def test_vehicles_travel_between_intersections() -> None:
    # Demand only from the west: the east intersection sees traffic only via the west one.
    demand = DemandConfig(arrival_rates=(0.0, 0.0, 0.0, 0.3), turn_ratios=(0.0, 1.0, 0.0))
    env = _env(rows=1, cols=2, demand=demand)
    env.reset(seed=0)
    for _ in range(40):
        env.step({"tl_0_0": 2, "tl_0_1": 2})  # east-west through is green
    east_from_west = env.sim.queue[1].reshape(4, 3)[3].sum() + env.sim.roads[:, 1].sum()
    assert env.sim.totals.exited > 0
    assert east_from_west + env.sim.totals.exited > 0
    assert env.sim.queue[1].reshape(4, 3)[[0, 1, 2]].sum() == 0


def test_min_green_holds_the_phase_and_yellow_costs_discharge() -> None:
    env = _env(min_green=10, yellow_time=3, delta_time=5)
    env.reset(seed=0)
    env.step({"tl_0_0": 2})  # time in phase 0 < min green: request ignored
    assert env.sim.phase[0] == 0
    env.step({"tl_0_0": 0})
    env.step({"tl_0_0": 2})  # 10 s of green done: switch, with 3 s of yellow
    assert env.sim.phase[0] == 2
    assert env.sim.time_in_phase[0] == 2


def test_queues_grow_on_red_and_drain_on_green() -> None:
    demand = DemandConfig(arrival_rates=(0.3, 0.0, 0.3, 0.0))  # north-south only
    env = _env(demand=demand, min_green=0)
    env.reset(seed=0)
    for _ in range(20):
        env.step({"tl_0_0": 2})  # east-west green: north-south waits
    red_queue = int(env.sim.queue.sum())
    for _ in range(20):
        env.step({"tl_0_0": 0})
    assert red_queue > 10
    assert int(env.sim.queue[0].reshape(4, 3)[[0, 2], 1:].sum()) < red_queue


def test_observation_and_state() -> None:
    env = _env(rows=2, cols=2, neighbour_obs=True)
    obs, _ = env.reset(seed=0)
    for _ in range(10):
        obs, *_ = env.step(dict.fromkeys(env.agents, 0))
    one = obs["tl_0_0"]
    assert one.shape == (env.obs_dim,)
    assert one[:4].tolist() == [1.0, 0.0, 0.0, 0.0]
    state = env.state()
    assert env.state_space.contains(state)
    assert np.allclose(state[: env.obs_dim], one)
    assert state[-1] == pytest.approx(50 / SHORT)


@pytest.mark.parametrize("reward", ["queue", "wait", "pressure"])
def test_reward_kinds(reward: str) -> None:
    env = _env(rows=2, cols=2, reward=reward)
    env.reset(seed=0)
    total = 0.0
    for _ in range(30):
        _, rewards, *_ = env.step(dict.fromkeys(env.agents, 0))
        total += sum(rewards.values())
        if reward == "queue":
            entering = env.sim.backlog[env.sim.net.entry_slots // 4 == 0].sum()
            assert rewards["tl_0_0"] == -float(env.sim.queue[0].sum() + entering)
    assert np.isfinite(total)
    if reward != "wait":
        assert total <= 0.0


def test_border_flags_tell_edge_from_inner_signals() -> None:
    env = _env(rows=3, cols=3, neighbour_obs=True, border_obs=True)
    obs, _ = env.reset(seed=0)
    assert env.obs_dim == 6 + 24 + 16 + 4
    assert obs["tl_0_0"][-4:].tolist() == [1.0, 0.0, 0.0, 1.0]  # north and west edges
    assert obs["tl_1_1"][-4:].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert obs["tl_2_1"][-4:].tolist() == [0.0, 0.0, 1.0, 0.0]
    parallel_api_test(env, num_cycles=20)


def test_reward_scale_multiplies_every_reward() -> None:
    plain = _env(rows=2, cols=2, reward="queue")
    scaled = _env(rows=2, cols=2, reward="queue", reward_scale=0.02)
    plain.reset(seed=3)
    scaled.reset(seed=3)
    for _ in range(20):
        _, a, *_ = plain.step(dict.fromkeys(plain.agents, 2))
        _, b, *_ = scaled.step(dict.fromkeys(scaled.agents, 2))
        assert b == pytest.approx({k: 0.02 * v for k, v in a.items()})


def test_neighbour_weight_adds_the_neighbours_rewards() -> None:
    env = _env(rows=2, cols=2, reward="queue", reward_neighbour_weight=0.5)
    env.reset(seed=1)
    for _ in range(20):
        _, rewards, *_ = env.step(dict.fromkeys(env.agents, 0))
    q = env.sim.queue.sum(axis=1)  # tl_0_0 neighbours tl_0_1 (east) and tl_1_0 (south)
    assert rewards["tl_0_0"] == pytest.approx(-(q[0] + 0.5 * (q[1] + q[2])))


def test_registered_grids_reward_the_queue_the_waiting_measure_counts() -> None:
    env = make_traffic_env("traffic-grid4x4", {"demand": {"arrival_rates": [1, 1, 1, 1]}})
    env.reset(seed=0)
    for _ in range(40):
        _, rewards, *_ = env.step(dict.fromkeys(env.agents, 0))
    assert env.sim.backlog.sum() > 0  # full entry roads: vehicles wait outside
    stopped = env.sim.queue.sum() + env.sim.backlog.sum()
    total = sum(rewards.values()) / env.config.reward_scale
    assert total == pytest.approx(-float(stopped))


def test_rush_hour_peaks_in_the_middle() -> None:
    env = _env(demand=DemandConfig(profile="rush-hour", peak_factor=3.0, peak_at=0.5))
    env.reset(seed=0)
    assert env.sim.demand_factor() < 1.2
    env.sim.time_s = SHORT // 2
    assert env.sim.demand_factor() == pytest.approx(3.0)


def test_grid_layout_routes() -> None:
    net = build_grid(2, 2)
    # From the north at (0, 0), through goes south to (1, 0), arriving from its north.
    assert net.lane_dest[0 * 12 + 0 * 3 + 1] == 2 * 4 + 0
    # From the north at (0, 0), left turns east to (0, 1), arriving from its west.
    assert net.lane_dest[0 * 12 + 0 * 3 + 0] == 1 * 4 + 3
    # From the north at (0, 0), right turns west: leaves the network.
    assert net.lane_dest[0 * 12 + 0 * 3 + 2] == net.num_slots
    assert len(net.entry_slots) == 8


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rows": 0}, "rows=0"),
        ({"cols": 33}, "cols=33"),
        ({"rows": 2.5}, "rows=2.5"),
        ({"demand": DemandConfig(arrival_rates=(0.1, -0.2, 0.1, 0.1))}, "negative"),
        ({"demand": DemandConfig(turn_ratios=(0.0, 0.0, 0.0))}, "turn_ratios"),
        ({"yellow_time": 5, "delta_time": 5}, "yellow_time"),
        ({"reward_scale": 0.0}, "reward_scale"),
        ({"reward_scale": -1.0}, "reward_scale"),
        ({"reward_neighbour_weight": 1.5}, "reward_neighbour_weight"),
    ],
)
def test_bad_config_is_a_clear_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrafficEnv(TrafficConfig(**kwargs))  # type: ignore[arg-type]


def test_action_outside_phase_set_names_the_agent() -> None:
    env = _env(rows=2, cols=2)
    env.reset(seed=0)
    with pytest.raises(InvalidInputError, match=r"tl_1_0.*outside the phase set"):
        env.step({"tl_0_0": 0, "tl_1_0": 7})
    with pytest.raises(InvalidInputError, match="unknown agent"):
        env.step({"tl_9_9": 0})
    with pytest.raises(InvalidInputError, match="not a phase number"):
        env.step({"tl_0_0": "north"})  # type: ignore[dict-item]


def test_step_after_the_end_asks_for_reset() -> None:
    env = _env(episode_seconds=10)
    env.reset(seed=0)
    while env.agents:
        env.step({"tl_0_0": 0})
    with pytest.raises(InvalidInputError, match="reset"):
        env.step({"tl_0_0": 0})


def test_registry_ids_and_overrides() -> None:
    ids = traffic_env_ids()
    assert {"traffic-single", "traffic-grid2x2", "traffic-grid4x4"} <= set(ids)
    assert {"sumo-single", "sumo-grid2x2", "sumo-grid4x4"} <= set(ids)
    env = make_traffic_env("traffic-grid4x4", {"episode_seconds": 60, "demand": {"peak_factor": 1}})
    assert len(env.possible_agents) == 16
    assert env.config.demand.profile == "rush-hour"
    with pytest.raises(ConfigError, match="did you mean rows"):
        make_traffic_env("traffic-grid2x2", {"rowz": 3})
    with pytest.raises(UnknownNameError, match="traffic-grid2x2"):
        make_traffic_env("traffic-grid2x3")


def test_envs_command_lists_traffic_ids() -> None:
    from fleetmind.envs.registry import resolve_env_id, trainable_env_ids

    assert trainable_env_ids()["traffic-grid4x4"] == "traffic"
    assert resolve_env_id("sumo-grid2x2") == "sumo-grid2x2"


def test_time_flags_follow_the_clock_and_the_rush_hour() -> None:
    env = _env(rows=2, cols=2, border_obs=True, time_obs=True, demand=DemandConfig(
        profile="rush-hour", peak_factor=2.0, peak_at=0.5))  # fmt: skip
    assert env.obs_dim == 6 + 24 + 4 + 2
    obs, _ = env.reset(seed=0)
    assert obs["tl_0_0"][-2:].tolist() == pytest.approx([0.0, env.sim.demand_factor() / 2.0])
    assert obs["tl_0_0"][-6:-2].tolist() == [1.0, 0.0, 0.0, 1.0]  # N and W are border roads
    for _ in range(30):  # to the peak, half of SHORT
        obs, *_ = env.step(dict.fromkeys(env.agents, 0))
    assert obs["tl_1_1"][-2:].tolist() == pytest.approx([0.5, 1.0])


def test_upstream_entries_show_platoons_on_their_way() -> None:
    env = _env(rows=1, cols=2, upstream_obs=True, demand=DemandConfig(arrival_rates=(0, 0, 0, 0.3)))
    assert env.obs_dim == 6 + 24 + 16
    env.reset(seed=0)
    for _ in range(20):  # phase 2: east-west through and right
        obs, *_ = env.step(dict.fromkeys(env.agents, 2))
        # tl_0_1's west approach is fed by tl_0_0's green eastbound lanes.
        west_through = env.sim.queue[0].reshape(4, 3)[3, 1]  # its right turn exits south
        cap = env.sim.road_capacity
        assert obs["tl_0_1"][30 + 3] == pytest.approx(min(west_through / cap, 1.0))
        assert obs["tl_0_0"][30 + 3] == 0.0  # a border approach
        arriving = env.sim.roads[env.sim._head][1]
        np.testing.assert_allclose(obs["tl_0_1"][34:46], np.minimum(arriving / cap, 1.0), 1e-6)


def test_phase_entries_sum_the_lanes_each_phase_serves() -> None:
    env = _env(rows=2, cols=2, phase_obs=True, time_obs=True)
    assert env.obs_dim == 6 + 24 + 8 + 2
    env.reset(seed=0)
    for _ in range(25):
        obs, *_ = env.step(dict.fromkeys(env.agents, 1))
    scale = 4.0 * env.sim.road_capacity
    queued = np.minimum(env.sim.phase_queue()[3] / scale, 1.0)
    np.testing.assert_allclose(obs["tl_1_1"][30:34], queued, rtol=1e-6)
    coming = np.minimum(env.sim.approaching() @ env.sim.net.green.T / scale, 1.0)
    np.testing.assert_allclose(obs["tl_0_0"][34:38], coming[0], rtol=1e-6)
    assert coming.sum() > 0
