"""The one environment registry: listing, lookup, registration and building."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pytest

from fleetmind.core.errors import ConfigError, UnknownNameError
from fleetmind.envs.env_entry import EnvEntry, team_entry
from fleetmind.envs.gym_vector import make_gym_vector_env
from fleetmind.envs.registry import (
    EnvRegistry,
    lookup_env,
    make_team_vector_env,
    make_vector_env,
    register_env,
    resolve_env_id,
    trainable_env_ids,
)
from fleetmind.envs.scenarios.coordination import CoordinationEnv

Register = Callable[[EnvEntry], None]

BUILTIN_IDS = [
    "traffic-single",
    "traffic-grid2x2",
    "traffic-grid4x4",
    "sumo-single",
    "sumo-grid2x2",
    "sumo-grid4x4",
    "fleetmind/offload-toy",
    "fleetmind/offload-contention",
    "fleetmind/offload-local-bound",
    "fleetmind/offload-network-bound",
    "fleetmind/offload-50",
    "fleetmind/jobshop-6x6",
    "fleetmind/jobshop-10x10",
    "fleetmind/jobshop-15x15",
    "fleetmind/jobshop-10x10-breakdowns",
    "fleetmind/jobshop-15x15-breakdowns",
    "fleetmind/jobshop-queues-15x15",
    "fleetmind/jobshop-queues-10x10",
    "fleetmind/jobshop-queues-15x15-breakdowns",
    "fleetmind/maintenance-v0",
    "fleetmind/coordination-large-v0",
    "fleetmind/coordination-v0",
    "mpe2/simple_reference_v3",
    "mpe2/simple_speaker_listener_v4",
    "mpe2/simple_spread_v3",
]


def test_single_agent_and_team_ids_are_listed_alike() -> None:
    ids = trainable_env_ids()
    assert ids["CartPole-v1"] == "classic_control"
    assert ids["FrozenLake-v1"] == "toy_text"
    assert ids["traffic-grid4x4"] == "traffic"
    assert ids["sumo-grid2x2"] == "traffic-sumo"
    assert ids["fleetmind/coordination-v0"] == "fleetmind scenario"
    assert ids["mpe2/simple_spread_v3"] == "mpe2 (cooperative)"
    gymnasium = [i for i, family in ids.items() if family in ("classic_control", "toy_text")]
    assert list(ids) == [*gymnasium, *BUILTIN_IDS]  # the order `fleetmind envs` prints
    assert gymnasium == sorted(gymnasium)


@pytest.mark.parametrize(
    ("env_id", "team", "single_agent"),
    [
        ("CartPole-v1", False, True),
        ("traffic-grid2x2", True, True),  # single-agent form: one vector slot per signal
        ("sumo-single", True, True),
        ("fleetmind/coordination-v0", True, False),
        ("mpe2/simple_spread_v3", True, False),
        ("fleetmind.envs.scenarios.coordination:parallel_env", True, False),
    ],
)
def test_entries_say_which_forms_they_build(env_id: str, team: bool, single_agent: bool) -> None:
    entry = lookup_env(env_id)
    assert entry.env_id == resolve_env_id(env_id) == env_id
    assert (entry.is_team, entry.has_single_agent_form) == (team, single_agent)


def test_both_forms_of_a_traffic_scenario_build() -> None:
    vector = make_vector_env("traffic-grid2x2", 2)
    assert vector.num_envs == 8  # 2 copies x 4 signals
    team = make_team_vector_env("traffic-grid2x2", 2)
    assert (team.num_envs, team.num_agents) == (2, 4)
    vector.close()
    team.close()


def test_a_registered_scenario_is_listed_and_built(register_env: Register) -> None:
    register_env(
        team_entry(
            "test/coordination-3-v0", CoordinationEnv, family="test scenario", kwargs={"agents": 3}
        )
    )
    assert trainable_env_ids()["test/coordination-3-v0"] == "test scenario"
    assert list(trainable_env_ids())[-1] == "test/coordination-3-v0"
    env = make_team_vector_env("test/coordination-3-v0", 2)
    assert (env.num_envs, env.num_agents, env.env_id) == (2, 3, "test/coordination-3-v0")
    with pytest.raises(ConfigError, match="without a single-agent form; train it with --algo"):
        make_vector_env("test/coordination-3-v0", 2)


def test_a_registered_single_agent_env_has_no_team_form(register_env: Register) -> None:
    make = partial(make_gym_vector_env, "CartPole-v1")
    register_env(EnvEntry("test/pole-v0", "test", make_vector=make))
    assert make_vector_env("test/pole-v0", 3).num_envs == 3
    with pytest.raises(ConfigError, match="single-agent environment; train it with"):
        make_team_vector_env("test/pole-v0", 1)
    with pytest.raises(ConfigError, match="single-agent environment"):
        make_team_vector_env("CartPole-v1", 1)


@pytest.mark.parametrize(
    ("env_id", "match"),
    [
        ("CartPole-v2", "Close matches: CartPole-v1"),
        ("cartpole-v1", "Close matches: CartPole-v1"),
        ("traffic-grid2x3", "traffic-grid2x2"),
        ("mpe2/simple_sprad_v3", "mpe2/simple_spread_v3"),
        ("fleetmind/coordinaton-v0", "fleetmind/coordination-v0"),
        ("zzzz", r"unknown environment id 'zzzz'\. Run `fleetmind envs`"),
    ],
)
def test_unknown_ids_name_close_matches(env_id: str, match: str) -> None:
    with pytest.raises(UnknownNameError, match=match):
        lookup_env(env_id)
    with pytest.raises(UnknownNameError, match=match):
        make_vector_env(env_id, 1)
    with pytest.raises(UnknownNameError, match=match):
        make_team_vector_env(env_id, 1)


def test_a_duplicate_id_is_refused_unless_replaced() -> None:
    registry = EnvRegistry()
    first = team_entry("test/game-v0", CoordinationEnv, family="first")
    registry.register(first)
    second = team_entry("test/game-v0", CoordinationEnv, family="second")
    taken = r"'test/game-v0' is already registered \(family 'first'\); choose another id"
    with pytest.raises(ConfigError, match=taken):
        registry.register(second)
    assert registry.lookup("test/game-v0") is first
    registry.register(second, replace=True)
    assert registry.env_ids()["test/game-v0"] == "second"
    registry.unregister("test/game-v0")
    with pytest.raises(UnknownNameError, match="is not registered"):
        registry.unregister("test/game-v0")


def test_a_builtin_id_cannot_be_registered_twice() -> None:
    with pytest.raises(ConfigError, match="'traffic-single' is already registered"):
        register_env(team_entry("traffic-single", CoordinationEnv))
    assert lookup_env("traffic-single").family == "traffic"


def test_an_entry_must_build_something() -> None:
    with pytest.raises(ConfigError, match="builds nothing"):
        EnvEntry("test/nothing-v0", "test")
    with pytest.raises(ConfigError, match="non-empty env_id"):
        team_entry("", CoordinationEnv)


def test_ids_of_uninstalled_packages_resolve_but_are_not_listed() -> None:
    entry = team_entry(
        "test/absent-v0", "no_such_package_xyz.envs:parallel_env", package="no_such_package_xyz"
    )
    registry = EnvRegistry([entry])
    assert "test/absent-v0" not in registry.env_ids()
    assert "CartPole-v1" in registry.env_ids()  # Gymnasium's ids sit behind every registry
    assert registry.lookup("test/absent-v0") is entry
    assert entry.make_team is not None
    with pytest.raises(ConfigError, match=r"cannot be imported .*; pip install no_such_pack"):
        entry.make_team(1)


def test_entry_point_ids_build_teams() -> None:
    env_id = "fleetmind.envs.scenarios.coordination:parallel_env"
    assert make_team_vector_env(env_id, 2).num_agents == 2
    with pytest.raises(ConfigError, match="cannot be imported"):
        make_team_vector_env("no_such_package_xyz.envs:parallel_env", 1)
    with pytest.raises(UnknownNameError, match="has no callable 'nope'"):
        make_team_vector_env("fleetmind.envs.scenarios.coordination:nope", 1)


@pytest.mark.parametrize("build", [make_vector_env, make_team_vector_env])
def test_the_number_of_copies_must_be_positive(build: Callable[[str, int], object]) -> None:
    with pytest.raises(ConfigError, match="number of environments must be positive, got 0"):
        build("traffic-single", 0)
