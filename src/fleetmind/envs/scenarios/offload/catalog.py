"""The named offloading scenarios: their ids, configs, construction and registry entries.

=====================================  ============================================
``fleetmind/offload-toy``              2 vehicles, 1 edge server, narrow radios
``fleetmind/offload-contention``       30 vehicles share 2 edge servers that report
                                       their backlog once a second
``fleetmind/offload-local-bound``      fast on-board CPUs, narrow radios, far servers
``fleetmind/offload-network-bound``    bulky sensor data over narrow radios
``fleetmind/offload-50``               50 vehicles, 8 edge servers, a 1.5 km square
=====================================  ============================================

``make_offload_env(env_id, overrides)`` merges ``overrides`` (a mapping of
:class:`OffloadConfig` fields) into the scenario's defaults; unknown keys and bad
values raise ConfigError. Every id trains as a team (``--algo mappo``/``ippo``);
``ENTRIES`` holds their :class:`EnvEntry` for the environment registry, with the
scenario's measures and baselines.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from fleetmind.config import merge_into
from fleetmind.core.errors import UnknownNameError
from fleetmind.envs.env_entry import EnvEntry, ScenarioBaselines, ScenarioMeasures, team_entry
from fleetmind.envs.scenarios.offload.config import OffloadConfig, TaskType, validate
from fleetmind.envs.scenarios.offload.env import OffloadEnv
from fleetmind.envs.scenarios.offload.metrics import METRIC_NAMES
from fleetmind.envs.scenarios.offload.policies import POLICIES

FAMILY = "offloading"

_BULKY_TASKS = (
    TaskType("lidar-sweep", input_bits=1.2e7, cycles=6e8, deadline_s=1.5, weight=0.5),
    TaskType("camera-burst", input_bits=6e6, cycles=4e8, deadline_s=1.0, weight=0.5),
)

SCENARIOS: dict[str, OffloadConfig] = {
    "fleetmind/offload-toy": OffloadConfig(
        vehicles=2,
        edge_servers=1,
        area_m=300.0,
        episode_steps=100,
        arrival_rate=1.5,
        bandwidth_hz=2e6,
    ),
    "fleetmind/offload-contention": OffloadConfig(
        vehicles=30,
        edge_servers=2,
        area_m=600.0,
        edge_cpu_hz=1.2e10,
        arrival_rate=2.0,
        report_period_s=1.0,
    ),
    "fleetmind/offload-local-bound": OffloadConfig(
        vehicles=6,
        edge_servers=2,
        area_m=1500.0,
        local_cpu_hz=6e9,
        bandwidth_hz=2e6,
        backhaul_latency_s=0.15,
        energy_weight=0.02,
    ),
    "fleetmind/offload-network-bound": OffloadConfig(
        vehicles=10,
        edge_servers=3,
        area_m=900.0,
        bandwidth_hz=4e6,
        arrival_rate=1.0,
        task_types=_BULKY_TASKS,
    ),
    "fleetmind/offload-50": OffloadConfig(
        vehicles=50, edge_servers=8, area_m=1500.0, arrival_rate=2.0
    ),
}
"""Each id's settings (see :class:`OffloadConfig` for every field)."""


def offload_env_ids() -> list[str]:
    """Every offloading scenario id, in the order listed above."""
    return list(SCENARIOS)


def scenario_config(env_id: str, overrides: Mapping[str, Any] | None = None) -> OffloadConfig:
    """The validated config of ``env_id`` with ``overrides`` merged in."""
    base = SCENARIOS.get(env_id)
    if base is None:
        close = difflib.get_close_matches(env_id, list(SCENARIOS), n=3, cutoff=0.5)
        hint = f" Close matches: {', '.join(close)}." if close else ""
        raise UnknownNameError(f"unknown offloading scenario {env_id!r}.{hint}")
    return validate(merge_into(base, dict(overrides or {}), where=env_id))


def make_offload_env(env_id: str, overrides: Mapping[str, Any] | None = None) -> OffloadEnv:
    """A fresh :class:`OffloadEnv` of the scenario ``env_id``."""
    return OffloadEnv(scenario_config(env_id, overrides), env_id=env_id)


MEASURES = ScenarioMeasures(
    agent="fleetmind.envs.scenarios.offload.evaluation:evaluate_agent",
    team="fleetmind.envs.scenarios.offload.evaluation:evaluate_policy",
)
"""Offloading's measures: completion time, deadline misses, energy, where tasks ran."""

BASELINES = ScenarioBaselines(
    policies=POLICIES,
    run="fleetmind.envs.scenarios.offload.evaluation:run_baseline",
    metrics=METRIC_NAMES,
)
"""Offloading's placement policies, for ``fleetmind baseline``."""

ENTRIES: tuple[EnvEntry, ...] = tuple(
    team_entry(
        env_id,
        make_offload_env,
        family=FAMILY,
        kwargs={"env_id": env_id},
        measures=MEASURES,
        baselines=BASELINES,
    )
    for env_id in SCENARIOS
)
"""Every offloading id as a team (they have no single-agent form)."""
