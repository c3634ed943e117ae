"""Episodes of a single-agent environment decided by an edge client (``fleetmind edge``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fleetmind.core.errors import ConfigError
from fleetmind.serve.offloading import OffloadingClient


@dataclass
class EdgeRunResult:
    """What a run of episodes measured."""

    returns: list[float] = field(default_factory=list)
    """Return of each episode."""
    places: Counter[str] = field(default_factory=Counter)
    """Decisions by where they ran (``local`` or a target)."""
    reasons: Counter[str] = field(default_factory=Counter)
    """Decisions by why they ran there."""
    latencies_s: list[float] = field(default_factory=list)
    """Latency of each decision."""

    @property
    def mean_latency_s(self) -> float:
        """Mean decision latency (0 before any decision)."""
        return float(np.mean(self.latencies_s)) if self.latencies_s else 0.0

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "episodes": len(self.returns),
            "mean_return": float(np.mean(self.returns)) if self.returns else 0.0,
            "returns": self.returns,
            "decisions": dict(self.places),
            "reasons": dict(self.reasons),
            "mean_decision_latency_ms": 1000 * self.mean_latency_s,
        }


def run_edge_episodes(
    client: OffloadingClient, env_id: str, episodes: int, seed: int = 0
) -> EdgeRunResult:
    """Run ``episodes`` episodes of ``env_id`` (seeds ``seed``, ``seed + 1``...)."""
    import gymnasium as gym

    from fleetmind.envs.gym_vector import make_env

    if episodes <= 0:
        raise ConfigError(f"--episodes must be a positive integer, got {episodes}")
    try:
        env = make_env(env_id)
    except gym.error.Error as exc:
        raise ConfigError(f"cannot make environment {env_id!r}: {exc}") from None
    discrete = isinstance(env.action_space, gym.spaces.Discrete)
    result = EdgeRunResult()
    try:
        for episode in range(episodes):
            observation, _ = env.reset(seed=seed + episode)
            total, done = 0.0, False
            while not done:
                decision = client.decide(observation)
                result.places[decision.place] += 1
                result.reasons[decision.reason] += 1
                result.latencies_s.append(decision.latency_s)
                action = int(decision.action) if discrete else decision.action
                observation, reward, terminated, truncated, _ = env.step(action)
                total += float(reward)
                done = terminated or truncated
            result.returns.append(total)
    finally:
        env.close()
    return result
