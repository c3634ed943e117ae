"""Evaluate a trained team: run N episodes of its multi-agent env, team returns.

On a traffic scenario the team also gets the traffic measures of
``fleetmind baseline`` (:func:`team_scenario_metrics`), so team runs compare with
the baselines exactly like shared-policy runs do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from fleetmind.algos.team import LoadedTeam
from fleetmind.envs.registry import make_team_vector_env

MAX_PARALLEL = 32
MAX_STEPS = 100_000


def team_episode_returns(
    loaded: LoadedTeam, episodes: int, seed: int, deterministic: bool
) -> list[float]:
    """Team return (sum over agents) of ``episodes`` episodes, in batches of copies."""
    returns: list[float] = []
    batch_seed = seed
    while len(returns) < episodes:
        count = min(MAX_PARALLEL, episodes - len(returns))
        returns += _run_batch(loaded, count, batch_seed, deterministic)
        batch_seed += count
    return returns


def _run_batch(loaded: LoadedTeam, count: int, seed: int, deterministic: bool) -> list[float]:
    env = make_team_vector_env(loaded.env_id, count)
    agents = [loaded.team.agents[name] for name in env.agents]
    try:
        step = env.reset(seed=seed)
        totals = np.zeros(count, dtype=np.float64)
        running = np.ones(count, dtype=bool)
        for _ in range(MAX_STEPS):
            actions = [
                a.act_batch(obs, deterministic) for a, obs in zip(agents, step.obs, strict=True)
            ]
            step = env.step(actions)
            totals += np.where(running, step.rewards.sum(axis=1), 0.0)
            running &= ~step.episode_end
            if not running.any():
                break
        return [float(v) for v in totals]
    finally:
        env.close()


def team_scenario_metrics(
    loaded: LoadedTeam, episodes: int, seed: int, deterministic: bool
) -> dict[str, Any] | None:
    """Traffic measures and team returns of a team trained on a traffic scenario.

    None for any other env. Episode ``k`` uses seed ``seed + k`` and every signal
    acts on its own observation, as in ``fleetmind baseline``.
    """
    from fleetmind.envs.scenarios.traffic.catalog import is_traffic_env_id

    if not is_traffic_env_id(loaded.env_id):
        return None
    from fleetmind.envs.scenarios.traffic.evaluation import evaluate_policy

    team = loaded.team

    def decide(observations: Mapping[str, np.ndarray]) -> dict[str, int]:
        actions = team.act(observations, deterministic)
        return {name: int(np.asarray(a).reshape(-1)[0]) for name, a in actions.items()}

    return evaluate_policy(loaded.env_id, decide, episodes, seed)
