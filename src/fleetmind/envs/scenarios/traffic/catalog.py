"""The named traffic scenarios: their ids, configs, construction and registry entries.

=================  =========================================================
``traffic-single``  built-in simulator, one intersection, rush-hour demand
``traffic-grid2x2`` built-in simulator, 2x2 grid, rush-hour demand
``traffic-grid4x4`` built-in simulator, 4x4 grid, rush-hour demand
``sumo-single``     SUMO (sumo-rl's single intersection)
``sumo-grid2x2``    SUMO (sumo-rl's 2x2 grid)
``sumo-grid4x4``    SUMO (sumo-rl's 4x4 grid, "4x4-Lucas")
=================  =========================================================

``make_traffic_env(env_id, overrides)`` merges ``overrides`` (a mapping of
:class:`TrafficConfig` or :class:`SumoConfig` fields, nested ``demand`` allowed)
into the scenario's defaults; unknown keys and bad values raise ConfigError.

Every id trains as a team (``--algo mappo``/``ippo``) and with single-agent
algorithms (``--algo ppo``), one vector slot per signal of each copy: ``ENTRIES``
holds their :class:`EnvEntry` for the environment registry.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from typing import Any

from fleetmind.config import merge_into
from fleetmind.core.errors import UnknownNameError
from fleetmind.envs.env_entry import EnvEntry, ScenarioBaselines, ScenarioMeasures, team_entry
from fleetmind.envs.scenarios.traffic.agents_vector import AgentsVectorEnv
from fleetmind.envs.scenarios.traffic.config import DemandConfig, TrafficConfig, validate
from fleetmind.envs.scenarios.traffic.controllers import CONTROLLERS
from fleetmind.envs.scenarios.traffic.env import TrafficEnv
from fleetmind.envs.scenarios.traffic.metrics import METRIC_NAMES
from fleetmind.envs.scenarios.traffic.sumo_env import SumoConfig, SumoTrafficEnv
from fleetmind.envs.scenarios.traffic.sumo_network import SumoScenario

_RUSH_HOUR = DemandConfig(profile="rush-hour")
# Queued vehicles per step is exactly what the waiting-time measure sums up; the
# scale keeps a signal's per-step reward near one for learners without reward
# normalisation.
_DEFAULTS: dict[str, Any] = {"reward": "queue", "reward_scale": 0.02}
# On the 4x4 grid the signals also see platoons on their way and the clock (where
# in the rush hour they are): its trained agents are compared with the baselines
# in BENCHMARKS.md.
_GRID4X4_OBS: dict[str, Any] = {"upstream_obs": True, "phase_obs": True, "time_obs": True}

BUILTIN_SCENARIOS: dict[str, TrafficConfig] = {
    "traffic-single": TrafficConfig(
        rows=1, cols=1, demand=replace(_RUSH_HOUR, peak_factor=2.0), **_DEFAULTS
    ),
    "traffic-grid2x2": TrafficConfig(rows=2, cols=2, demand=_RUSH_HOUR, **_DEFAULTS),
    "traffic-grid4x4": TrafficConfig(
        rows=4, cols=4, demand=_RUSH_HOUR, **_DEFAULTS, **_GRID4X4_OBS
    ),
}

SUMO_SCENARIOS: dict[str, SumoScenario] = {
    "sumo-single": "single",
    "sumo-grid2x2": "grid2x2",
    "sumo-grid4x4": "grid4x4",
}

FAMILY_BUILTIN = "traffic"
FAMILY_SUMO = "traffic-sumo"


def traffic_env_ids() -> dict[str, str]:
    """Every traffic scenario id, id -> family (``traffic`` or ``traffic-sumo``)."""
    out = dict.fromkeys(BUILTIN_SCENARIOS, FAMILY_BUILTIN)
    out.update(dict.fromkeys(SUMO_SCENARIOS, FAMILY_SUMO))
    return out


def is_traffic_env_id(env_id: str) -> bool:
    """True for the ids listed by :func:`traffic_env_ids`."""
    return env_id in BUILTIN_SCENARIOS or env_id in SUMO_SCENARIOS


def scenario_config(env_id: str, overrides: Mapping[str, Any] | None = None) -> Any:
    """The validated config of ``env_id`` with ``overrides`` merged in."""
    data = dict(overrides or {})
    if env_id in BUILTIN_SCENARIOS:
        return validate(merge_into(BUILTIN_SCENARIOS[env_id], data, where=env_id))
    if env_id in SUMO_SCENARIOS:
        base = SumoConfig(scenario=SUMO_SCENARIOS[env_id])
        return merge_into(base, data, where=env_id)
    close = difflib.get_close_matches(env_id, list(traffic_env_ids()), n=3, cutoff=0.5)
    hint = f" Close matches: {', '.join(close)}." if close else ""
    raise UnknownNameError(f"unknown traffic scenario {env_id!r}.{hint}")


def make_traffic_env(env_id: str, overrides: Mapping[str, Any] | None = None) -> Any:
    """A fresh PettingZoo parallel env (:class:`TrafficEnv` or ``SumoTrafficEnv``)."""
    config = scenario_config(env_id, overrides)
    if env_id in BUILTIN_SCENARIOS:
        return TrafficEnv(config, env_id=env_id)
    return SumoTrafficEnv(config, env_id=env_id)


def make_agents_vector_env(env_id: str, copies: int) -> AgentsVectorEnv:
    """``copies`` copies of a traffic scenario, one vector slot per signal."""
    overrides: dict[str, Any] = {}
    if env_id in SUMO_SCENARIOS and copies > 1:
        overrides["backend"] = "traci"  # libsumo runs one simulation per process
    return AgentsVectorEnv(lambda: make_traffic_env(env_id, overrides), copies)


MEASURES = ScenarioMeasures(
    agent="fleetmind.envs.scenarios.traffic.evaluation:evaluate_agent",
    team="fleetmind.envs.scenarios.traffic.evaluation:evaluate_policy",
)
"""Traffic's measures: mean waiting and travel time, throughput (per episode)."""

BASELINES = ScenarioBaselines(
    policies=tuple(CONTROLLERS),
    run="fleetmind.envs.scenarios.traffic.evaluation:run_baseline",
    metrics=METRIC_NAMES,
)
"""Traffic's signal controllers, for ``fleetmind baseline``."""


def _entry(env_id: str, family: str) -> EnvEntry:
    return team_entry(
        env_id,
        make_traffic_env,
        family=family,
        kwargs={"env_id": env_id},
        make_vector=partial(make_agents_vector_env, env_id),
        measures=MEASURES,
        baselines=BASELINES,
    )


ENTRIES: tuple[EnvEntry, ...] = tuple(_entry(i, f) for i, f in traffic_env_ids().items())
"""Every traffic id as a team with a single-agent form, in the order listed above."""
