"""Running whole episodes of a traffic scenario and reporting the traffic metrics.

``fleetmind baseline`` calls :func:`run_baseline`; ``fleetmind eval`` calls
:func:`evaluate_policy` with the trained agents' decision function, so both
print the same measures (see :mod:`.metrics`). Episode ``k`` uses seed
``seed + k``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from fleetmind.envs.env_entry import check_episodes
from fleetmind.envs.scenarios.traffic.catalog import make_traffic_env
from fleetmind.envs.scenarios.traffic.controllers import make_controller
from fleetmind.envs.scenarios.traffic.metrics import Decide, TrafficMetrics, run_episode, summarize

logger = logging.getLogger(__name__)


def run_baseline(
    env_id: str,
    policy: str,
    episodes: int = 1,
    seed: int = 0,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Mean and per-episode traffic metrics of a baseline controller on ``env_id``."""
    check_episodes(episodes)
    controller = make_controller(policy)
    env = make_traffic_env(env_id, overrides)
    results: list[TrafficMetrics] = []
    try:
        for k in range(episodes):
            metrics, _ = run_episode(
                env,
                lambda _obs: controller.act(env),
                seed + k,
                on_reset=lambda: controller.reset(env),
            )
            logger.info("%s %s episode %d: %s", env_id, policy, k, metrics)
            results.append(metrics)
    finally:
        env.close()
    return {"env_id": env_id, "policy": policy, "seed": seed, **summarize(results)}


def evaluate_policy(
    env_id: str,
    decide: Decide,
    episodes: int = 5,
    seed: int = 0,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Mean and per-episode traffic metrics of any decision function on ``env_id``."""
    check_episodes(episodes)
    env = make_traffic_env(env_id, overrides)
    results: list[TrafficMetrics] = []
    returns: list[float] = []
    try:
        for k in range(episodes):
            metrics, team_return = run_episode(env, decide, seed + k)
            results.append(metrics)
            returns.append(team_return)
    finally:
        env.close()
    return {"env_id": env_id, "seed": seed, "returns": returns, **summarize(results)}


def evaluate_agent(
    env_id: str,
    act_batch: Callable[[np.ndarray], np.ndarray],
    episodes: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    """Traffic metrics of a policy shared by every signal.

    ``act_batch`` maps the stacked observations ``[agents, obs_dim]`` of the live
    agents (in agent order) to their actions; ``fleetmind eval`` passes the
    trained agent's ``act_batch``.
    """

    def decide(observations: Mapping[str, np.ndarray]) -> dict[str, int]:
        names = list(observations)
        actions = act_batch(np.stack([observations[a] for a in names]).astype(np.float32))
        return {a: int(x) for a, x in zip(names, np.asarray(actions).reshape(-1), strict=True)}

    return evaluate_policy(env_id, decide, episodes, seed)
