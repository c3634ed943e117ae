"""The named job-shop scenarios: their ids, construction, baselines and registry entries.

=======================================  ==========================================
``fleetmind/jobshop-6x6``                random 6x6 instances, no breakdowns
``fleetmind/jobshop-10x10``              random 10x10 instances
``fleetmind/jobshop-15x15``              random 15x15 instances (Taillard's size)
``fleetmind/jobshop-10x10-breakdowns``   10x10 with machines that fail and wear
``fleetmind/jobshop-15x15-breakdowns``   15x15 with machines that fail and wear
``fleetmind/jobshop-queues-15x15``       the learned dispatcher's env: one contested
                                         queue per decision (:mod:`.slots`)
``fleetmind/jobshop-queues-10x10``       the same on random 10x10 instances
``fleetmind/jobshop-queues-15x15-breakdowns``  the same with machines that fail
``fleetmind/maintenance-v0``             when to maintain one machine, from its
                                         fault warning (:mod:`.maintenance`)
=======================================  ==========================================

``make_jobshop_env(env_id, overrides)`` merges ``overrides`` (fields of
:class:`JobShopConfig`, e.g. ``{"instance": "ta01"}``) into the scenario's. Every
id trains as a single-agent env (its observation flattened for ``--algo ppo``);
``fleetmind baseline`` runs the dispatching rules online on it.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import FlattenObservation

from fleetmind.config import merge_into
from fleetmind.core.errors import ConfigError, UnknownNameError
from fleetmind.envs.env_entry import EnvEntry, ScenarioBaselines, check_episodes
from fleetmind.envs.scenarios.jobshop.env import JobShopConfig, JobShopEnv
from fleetmind.envs.scenarios.jobshop.maintenance import MaintenanceEnv
from fleetmind.envs.scenarios.jobshop.rules import RULES, lookup_rule
from fleetmind.envs.scenarios.jobshop.slots import JobShopSlotEnv, SlotConfig

FAMILY = "manufacturing"
logger = logging.getLogger(__name__)

SCENARIOS: dict[str, JobShopConfig] = {
    "fleetmind/jobshop-6x6": JobShopConfig(jobs=6, machines=6),
    "fleetmind/jobshop-10x10": JobShopConfig(jobs=10, machines=10),
    "fleetmind/jobshop-15x15": JobShopConfig(jobs=15, machines=15),
    "fleetmind/jobshop-10x10-breakdowns": JobShopConfig(jobs=10, machines=10, breakdowns=True),
    "fleetmind/jobshop-15x15-breakdowns": JobShopConfig(jobs=15, machines=15, breakdowns=True),
}
"""Each id's settings."""

METRICS = ("makespan", "gap_to_lower_bound", "aborted_operations")


def jobshop_env_ids() -> list[str]:
    """Every job-shop id, in the order listed above."""
    return list(SCENARIOS)


def scenario_config(env_id: str, overrides: Mapping[str, Any] | None = None) -> JobShopConfig:
    """The config of ``env_id`` with ``overrides`` merged in."""
    base = SCENARIOS.get(env_id)
    if base is None:
        close = difflib.get_close_matches(env_id, list(SCENARIOS), n=3, cutoff=0.5)
        hint = f" Close matches: {', '.join(close)}." if close else ""
        raise UnknownNameError(f"unknown job-shop scenario {env_id!r}.{hint}")
    return merge_into(base, dict(overrides or {}), where=env_id)


def make_jobshop_env(env_id: str, overrides: Mapping[str, Any] | None = None) -> JobShopEnv:
    """A fresh :class:`JobShopEnv` of the scenario ``env_id``."""
    return JobShopEnv(scenario_config(env_id, overrides))


def make_jobshop_vector_env(env_id: str, num_envs: int) -> gym.vector.VectorEnv[Any, Any, Any]:
    """``num_envs`` copies with flattened observations, for single-agent algorithms."""
    if num_envs <= 0:
        raise ConfigError(f"number of environments must be positive, got {num_envs}")
    return gym.vector.SyncVectorEnv(
        [lambda: FlattenObservation(make_jobshop_env(env_id)) for _ in range(num_envs)]
    )


def run_baseline(
    env_id: str,
    policy: str,
    episodes: int = 1,
    seed: int = 0,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Mean and per-episode makespans of the rule ``policy`` dispatching online.

    A queue id (``jobshop-queues-*``) runs the rule on the same shops: its episode
    of seed ``s`` is the instance and the breakdowns of the plain env's episode ``s``.
    """
    check_episodes(episodes)
    rule = lookup_rule(policy)
    if env_id in QUEUE_SCENARIOS:
        queue = merge_into(QUEUE_SCENARIOS[env_id], dict(overrides or {}), where=env_id)
        env = JobShopEnv(
            JobShopConfig(queue.jobs, queue.machines, queue.instance, queue.breakdowns)
        )
    else:
        env = make_jobshop_env(env_id, overrides)
    rows = []
    for k in range(episodes):
        env.reset(seed=seed + k)
        shop, done, info = env.shop, False, dict[str, Any]()
        while not done and shop is not None:
            scores = np.where(shop.candidates(), rule(shop), np.inf)
            _, _, done, _, info = env.step(int(np.argmin(scores)))
        bound = env.shop.instance.lower_bound() if env.shop else 1
        rows.append({
            "makespan": float(info["makespan"]),
            "gap_to_lower_bound": info["makespan"] / bound - 1,
            "aborted_operations": float(info["aborted_operations"]),
        })  # fmt: skip
        logger.info("%s %s episode %d: %s", env_id, policy, k, rows[-1])
    means = {name: float(np.mean([row[name] for row in rows])) for name in METRICS}
    return {"env_id": env_id, "policy": policy, "seed": seed, **means, "episodes": rows}


BASELINES = ScenarioBaselines(
    policies=tuple(RULES),
    run="fleetmind.envs.scenarios.jobshop.catalog:run_baseline",
    metrics=METRICS,
)
"""The dispatching rules, for ``fleetmind baseline``."""


def _entry(env_id: str) -> EnvEntry:
    def make_vector(num_envs: int) -> gym.vector.VectorEnv[Any, Any, Any]:
        return make_jobshop_vector_env(env_id, num_envs)

    return EnvEntry(env_id, FAMILY, make_vector=make_vector, baselines=BASELINES)


QUEUE_SCENARIOS: dict[str, SlotConfig] = {
    "fleetmind/jobshop-queues-15x15": SlotConfig(jobs=15, machines=15),
    "fleetmind/jobshop-queues-10x10": SlotConfig(jobs=10, machines=10),
    "fleetmind/jobshop-queues-15x15-breakdowns": SlotConfig(breakdowns=True),
}
"""The learned dispatcher's scenarios (flat observations of a fixed size)."""


def make_queue_env(env_id: str, overrides: Mapping[str, Any] | None = None) -> JobShopSlotEnv:
    """A fresh :class:`JobShopSlotEnv` of the scenario ``env_id``."""
    if env_id not in QUEUE_SCENARIOS:
        raise UnknownNameError(f"unknown job-shop queue scenario {env_id!r}")
    return JobShopSlotEnv(merge_into(QUEUE_SCENARIOS[env_id], dict(overrides or {}), where=env_id))


def _queue_entry(env_id: str) -> EnvEntry:
    def make_vector(num_envs: int) -> gym.vector.VectorEnv[Any, Any, Any]:
        if num_envs <= 0:
            raise ConfigError(f"number of environments must be positive, got {num_envs}")
        return gym.vector.SyncVectorEnv([lambda: make_queue_env(env_id)] * num_envs)

    return EnvEntry(env_id, FAMILY, make_vector=make_vector, baselines=BASELINES)


MAINTENANCE_ID = "fleetmind/maintenance-v0"


def make_maintenance_vector_env(num_envs: int) -> gym.vector.VectorEnv[Any, Any, Any]:
    """``num_envs`` copies of the one-machine maintenance env."""
    if num_envs <= 0:
        raise ConfigError(f"number of environments must be positive, got {num_envs}")
    return gym.vector.SyncVectorEnv([MaintenanceEnv for _ in range(num_envs)])


ENTRIES: tuple[EnvEntry, ...] = (
    *(_entry(env_id) for env_id in SCENARIOS),
    *(_queue_entry(env_id) for env_id in QUEUE_SCENARIOS),
    EnvEntry(MAINTENANCE_ID, FAMILY, make_vector=make_maintenance_vector_env),
)
"""Every job-shop id, in its single-agent form, and the maintenance env."""
