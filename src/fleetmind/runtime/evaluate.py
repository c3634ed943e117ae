"""Evaluate a trained agent or team: run N episodes, report mean and spread of returns.

One loop for a single agent and a team: the checkpoint's env is stepped through
the interface with an agent axis (a Gymnasium env is a team of one), every agent
acting on its own observation; an episode's return is the team return, the sum
over agents. On a traffic scenario the result also carries the traffic measures
of ``fleetmind baseline``, so trained agents compare with the baselines directly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from fleetmind.algos.loading import LoadedAgent, load_agent, read_checkpoint
from fleetmind.algos.team.loading import LoadedTeam, is_team_checkpoint, team_from_state
from fleetmind.core.errors import ConfigError
from fleetmind.envs.gym_team import GymTeamEnv
from fleetmind.envs.registry import lookup_env, make_team_vector_env, make_vector_env
from fleetmind.runtime.collector import TeamEnv

MAX_PARALLEL = 32
MAX_STEPS = 1_000_000

Decider = Callable[[np.ndarray], np.ndarray]
"""One agent's env actions for ``[B, ...]`` raw observations."""
DeciderSource = Callable[[str | None], Decider]
"""The decider of an agent of a team, by name (``None``: the one agent of a single-agent
run); evaluation through a server passes one (``fleetmind eval --remote``)."""


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


@dataclass
class _Subject:
    """What is evaluated: an env id, how to build its copies, each agent's decider, and
    how the scenario measures it (None: by returns alone)."""

    env_id: str
    make_env: Callable[[int], TeamEnv]
    deciders: list[Decider]
    scenario: Callable[[int, int], dict[str, Any]] | None


def evaluate(
    path: str | Path,
    episodes: int = 10,
    seed: int = 0,
    deterministic: bool = True,
    deciders: DeciderSource | None = None,
) -> EvalResult:
    """Run ``episodes`` episodes of the agent or team in ``path`` on its training env.

    With ``deciders`` the actions come from them (a served copy of the checkpoint)
    instead of the checkpoint itself; the episodes and seeds are the same.
    """
    if episodes <= 0:
        raise ConfigError(f"--episodes must be a positive integer, got {episodes}")
    state, ckpt = read_checkpoint(Path(path))
    if is_team_checkpoint(state):
        subject = _team_subject(team_from_state(state, ckpt), deterministic, deciders)
    else:
        subject = _agent_subject(load_agent(path), deterministic, deciders)
    if subject.scenario is not None:
        summary = subject.scenario(episodes, seed)
        returns = [float(r) for r in summary.pop("returns")]
        return _result(returns, summary)
    returns = []
    batch_seed = seed
    while len(returns) < episodes:
        count = min(MAX_PARALLEL, episodes - len(returns))
        returns += _run_batch(subject, count, batch_seed)
        batch_seed += count
    return _result(returns, None)


def _result(returns: list[float], summary: dict[str, Any] | None) -> EvalResult:
    values = np.asarray(returns, dtype=np.float64)
    return EvalResult(float(values.mean()), float(values.std()), len(returns), returns, summary)


def _agent_subject(
    loaded: LoadedAgent, deterministic: bool, source: DeciderSource | None = None
) -> _Subject:
    agent = loaded.agent

    def local(obs: np.ndarray) -> np.ndarray:
        return np.asarray(agent.act_batch(obs, deterministic))

    decide = local if source is None else source(None)

    measures = lookup_env(loaded.env_id).measures
    scenario = None if measures is None else partial(measures.of_agent, loaded.env_id, decide)

    def make(count: int) -> TeamEnv:
        return GymTeamEnv(make_vector_env(loaded.env_id, count), loaded.env_id)

    return _Subject(loaded.env_id, make, [decide], scenario)


def _team_subject(
    loaded: LoadedTeam, deterministic: bool, source: DeciderSource | None = None
) -> _Subject:
    team = loaded.team

    def local(name: str) -> Decider:
        agent = team.agents[name]
        return lambda obs: agent.act_batch(obs, deterministic)

    decider: Callable[[str], Decider] = local if source is None else source
    by_agent = {name: decider(name) for name in loaded.spec.agents}

    def decide_all(observations: Mapping[str, np.ndarray]) -> dict[str, int]:
        actions = {
            name: by_agent[name](np.asarray(obs, dtype=np.float32)[None])[0]
            for name, obs in observations.items()
        }
        return {name: int(np.asarray(a).reshape(-1)[0]) for name, a in actions.items()}

    measures = lookup_env(loaded.env_id).measures
    scenario = None if measures is None else partial(measures.of_team, loaded.env_id, decide_all)

    def make(count: int) -> TeamEnv:
        return make_team_vector_env(loaded.env_id, count)

    return _Subject(loaded.env_id, make, list(by_agent.values()), scenario)


def _run_batch(subject: _Subject, count: int, seed: int) -> list[float]:
    """Team returns of one episode in each of ``count`` copies."""
    env = subject.make_env(count)
    try:
        step = env.reset(seed=seed)
        totals = np.zeros(count, dtype=np.float64)
        running = np.ones(count, dtype=bool)
        for _ in range(MAX_STEPS):
            actions = [decide(obs) for decide, obs in zip(subject.deciders, step.obs, strict=True)]
            step = env.step(actions)
            totals += np.where(running, step.rewards.sum(axis=1), 0.0)
            running &= ~step.episode_end
            if not running.any():
                break
        return [float(v) for v in totals]
    finally:
        env.close()
