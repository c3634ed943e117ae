"""Evaluate a trained agent: run N episodes, report mean and spread of returns."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetmind.algos.loading import load_agent
from fleetmind.core.errors import ConfigError
from fleetmind.envs.registry import make_vector_env

if TYPE_CHECKING:
    from fleetmind.algos.team import LoadedTeam

MAX_PARALLEL = 32
MAX_STEPS = 1_000_000


@dataclass
class EvalResult:
    """Returns of the evaluated episodes."""

    mean_return: float
    """Mean episode return."""
    std_return: float
    """Standard deviation of the episode returns."""
    episodes: int
    """Episodes run."""
    returns: list[float]
    """Each episode's return, in order of the environment copies."""
    scenario_metrics: dict[str, Any] | None = None
    """Scenario measures (traffic: mean waiting/travel time, throughput, per episode)."""


def evaluate(
    path: str | Path, episodes: int = 10, seed: int = 0, deterministic: bool = True
) -> EvalResult:
    """Run ``episodes`` episodes of the agent in ``path`` on its training env."""
    if episodes <= 0:
        raise ConfigError(f"--episodes must be a positive integer, got {episodes}")
    from fleetmind.algos.loading import read_checkpoint
    from fleetmind.algos.team import is_team_checkpoint, team_from_state

    state, ckpt = read_checkpoint(Path(path))
    if is_team_checkpoint(state):  # a multi-agent run: team returns
        return _evaluate_team(team_from_state(state, ckpt), episodes, seed, deterministic)
    loaded = load_agent(path)
    scenario = _evaluate_scenario(loaded.env_id, loaded.agent, episodes, seed, deterministic)
    if scenario is not None:
        return scenario
    returns: list[float] = []
    batch_seed = seed
    while len(returns) < episodes:
        count = min(MAX_PARALLEL, episodes - len(returns))
        returns += _run_batch(loaded.env_id, loaded.agent, count, batch_seed, deterministic)
        batch_seed += count
    values = np.asarray(returns, dtype=np.float64)
    return EvalResult(float(values.mean()), float(values.std()), episodes, returns)


def _evaluate_team(team: LoadedTeam, episodes: int, seed: int, deterministic: bool) -> EvalResult:
    """Team returns; on a traffic scenario also the traffic measures."""
    from fleetmind.runtime.multiagent_eval import team_episode_returns, team_scenario_metrics

    summary = team_scenario_metrics(team, episodes, seed, deterministic)
    if summary is not None:
        returns = [float(r) for r in summary.pop("returns")]
    else:
        returns = team_episode_returns(team, episodes, seed, deterministic)
    arr = np.asarray(returns, dtype=np.float64)
    return EvalResult(float(arr.mean()), float(arr.std()), episodes, returns, summary)


def _run_batch(
    env_id: str, agent: object, count: int, seed: int, deterministic: bool
) -> list[float]:
    from fleetmind.core.agent import Agent

    if not isinstance(agent, Agent):
        raise TypeError("agent must be a fleetmind Agent")
    env = make_vector_env(env_id, count)
    try:
        obs, _ = env.reset(seed=seed)
        totals = np.zeros(count, dtype=np.float64)
        running = np.ones(count, dtype=bool)
        for _ in range(MAX_STEPS):
            actions = agent.act_batch(np.asarray(obs, dtype=np.float32), deterministic)
            obs, reward, term, trunc, _ = env.step(actions)
            totals += np.where(running, reward, 0.0)
            running &= ~(np.asarray(term) | np.asarray(trunc))
            if not running.any():
                break
        return [float(v) for v in totals]
    finally:
        env.close()


def _evaluate_scenario(
    env_id: str, agent: Any, episodes: int, seed: int, deterministic: bool
) -> EvalResult | None:
    """Multi-agent scenarios: team returns plus the scenario's own measures."""
    from fleetmind.envs.scenarios.traffic.catalog import is_traffic_env_id

    if not is_traffic_env_id(env_id):
        return None
    from fleetmind.envs.scenarios.traffic.evaluation import evaluate_agent

    def act_batch(obs: np.ndarray) -> np.ndarray:
        return np.asarray(agent.act_batch(obs, deterministic))

    summary = evaluate_agent(env_id, act_batch, episodes, seed)
    returns = [float(r) for r in summary.pop("returns")]
    values = np.asarray(returns, dtype=np.float64)
    return EvalResult(float(values.mean()), float(values.std()), episodes, returns, summary)
