"""Running whole episodes of an offloading scenario and reporting its measures.

``fleetmind baseline`` calls :func:`run_baseline`; ``fleetmind eval`` calls
:func:`evaluate_policy` (or :func:`evaluate_agent`) with the trained agents'
decisions, so both print the same measures (see :mod:`.metrics`). Episode ``k``
uses seed ``seed + k``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from fleetmind.envs.env_entry import check_episodes
from fleetmind.envs.scenarios.offload.catalog import make_offload_env
from fleetmind.envs.scenarios.offload.env import OffloadEnv
from fleetmind.envs.scenarios.offload.metrics import OffloadMetrics, summarize
from fleetmind.envs.scenarios.offload.policies import make_policy

logger = logging.getLogger(__name__)

Decide = Callable[[Mapping[str, np.ndarray]], Mapping[str, int]]
"""Maps each live agent's observation to its action."""


def run_episode(env: OffloadEnv, decide: Decide, seed: int) -> tuple[OffloadMetrics, float]:
    """Play one episode from ``reset(seed=seed)``; its measures and team return."""
    observations, _ = env.reset(seed=seed)
    team_return = 0.0
    while env.agents:
        actions = {agent: int(a) for agent, a in decide(observations).items()}
        observations, rewards, _, _, _ = env.step(actions)
        team_return += float(sum(rewards.values()))
    return env.offload_metrics(), team_return


def run_baseline(
    env_id: str,
    policy: str,
    episodes: int = 1,
    seed: int = 0,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Mean and per-episode measures of a baseline policy on ``env_id``."""
    check_episodes(episodes)
    env = make_offload_env(env_id, overrides)
    results: list[OffloadMetrics] = []
    for k in range(episodes):
        place = make_policy(policy, env.config.vehicles, seed + k)

        def decide(_obs: Mapping[str, np.ndarray], place: Any = place) -> dict[str, int]:
            chosen = place(env.sim)
            return {a: int(chosen[i]) for i, a in enumerate(env.possible_agents)}

        metrics, _ = run_episode(env, decide, seed + k)
        logger.info("%s %s episode %d: %s", env_id, policy, k, metrics)
        results.append(metrics)
    return {"env_id": env_id, "policy": policy, "seed": seed, **summarize(results)}


def evaluate_policy(
    env_id: str,
    decide: Decide,
    episodes: int = 5,
    seed: int = 0,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Mean and per-episode measures of any decision function on ``env_id``."""
    check_episodes(episodes)
    env = make_offload_env(env_id, overrides)
    results: list[OffloadMetrics] = []
    returns: list[float] = []
    for k in range(episodes):
        metrics, team_return = run_episode(env, decide, seed + k)
        results.append(metrics)
        returns.append(team_return)
    return {"env_id": env_id, "seed": seed, "returns": returns, **summarize(results)}


def evaluate_agent(
    env_id: str,
    act_batch: Callable[[np.ndarray], np.ndarray],
    episodes: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    """Measures of a policy shared by every vehicle (``act_batch``: stacked observations
    ``[agents, obs_dim]`` in agent order to their actions)."""

    def decide(observations: Mapping[str, np.ndarray]) -> dict[str, int]:
        names = list(observations)
        actions = act_batch(np.stack([observations[a] for a in names]).astype(np.float32))
        return {a: int(x) for a, x in zip(names, np.asarray(actions).reshape(-1), strict=True)}

    return evaluate_policy(env_id, decide, episodes, seed)
