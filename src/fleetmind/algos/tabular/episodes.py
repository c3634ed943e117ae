"""Tabular Q-learning and SARSA for envs with discrete observations and actions.

Both keep a table ``Q[s, a]`` and move it toward a one-step target after each step::

    Q-learning (off-policy):  target = r + gamma * max_a' Q(s', a')
    SARSA      (on-policy):   target = r + gamma * Q(s', a'),  a' the action taken next
    Q(s, a) += learning_rate * (target - Q(s, a))

The bootstrap term is dropped when the episode terminated and kept when it was
truncated by a time limit. Actions are epsilon-greedy, with epsilon falling
linearly from ``epsilon_start`` to ``epsilon_end`` over ``epsilon_decay_episodes``.

    result = train_tabular(gym.make("CliffWalking-v1"), TabularConfig(algo="sarsa"))
    action = int(result.q.argmax(axis=1)[state])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from fleetmind.core.errors import ConfigError


@dataclass
class TabularConfig:
    """Settings of tabular Q-learning and SARSA."""

    algo: Literal["q_learning", "sarsa"] = "q_learning"
    """q_learning (off-policy max target) or sarsa (on-policy target)."""
    episodes: int = 1000
    """Episodes to train for."""
    learning_rate: float = 0.1
    """Step size of each table update, in (0, 1]."""
    gamma: float = 0.99
    """Discount factor in [0, 1]."""
    epsilon_start: float = 1.0
    """Exploration probability in the first episode."""
    epsilon_end: float = 0.05
    """Exploration probability once the schedule ends."""
    epsilon_decay_episodes: int = 500
    """Episodes over which epsilon falls linearly to epsilon_end."""
    seed: int = 0
    """Seed of the exploration and of the environment resets."""

    def validate(self) -> None:
        """Raise ConfigError for settings outside their ranges."""
        if self.episodes < 1 or self.epsilon_decay_episodes < 0:
            raise ConfigError("episodes must be positive and epsilon_decay_episodes >= 0")
        if not 0.0 < self.learning_rate <= 1.0:
            raise ConfigError(f"learning_rate must be in (0, 1], got {self.learning_rate}")
        for name in ("gamma", "epsilon_start", "epsilon_end"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)}")

    def epsilon(self, episode: int) -> float:
        """Exploration probability in ``episode`` (0-based)."""
        if episode >= self.epsilon_decay_episodes:
            return self.epsilon_end
        frac = episode / max(self.epsilon_decay_episodes, 1)
        return self.epsilon_start + (self.epsilon_end - self.epsilon_start) * frac


@dataclass
class TabularResult:
    """A learned table and the training curve."""

    q: np.ndarray
    """Action values, ``float64 [S, A]``."""
    episode_returns: np.ndarray
    """Undiscounted return of each training episode."""

    @property
    def policy(self) -> np.ndarray:
        """Greedy action of each state."""
        return np.asarray(self.q.argmax(axis=1), dtype=np.int64)


def _spaces(env: Any) -> tuple[int, int]:
    n_states = getattr(env.observation_space, "n", None)
    n_actions = getattr(env.action_space, "n", None)
    if n_states is None or n_actions is None:
        raise ConfigError(
            f"tabular methods need discrete observations and actions; got "
            f"{env.observation_space} and {env.action_space}; use --algo dqn or ppo"
        )
    return int(n_states), int(n_actions)


def _choose(q_row: np.ndarray, epsilon: float, rng: np.random.Generator) -> int:
    if rng.random() < epsilon:
        return int(rng.integers(len(q_row)))
    best = np.flatnonzero(q_row == q_row.max())
    return int(best[0] if len(best) == 1 else rng.choice(best))


def train_tabular(env: Any, config: TabularConfig) -> TabularResult:
    """Train on a Gymnasium env with ``Discrete`` spaces for ``config.episodes`` episodes."""
    config.validate()
    n_states, n_actions = _spaces(env)
    rng = np.random.default_rng(config.seed)
    q = np.zeros((n_states, n_actions))
    returns = np.zeros(config.episodes)
    for episode in range(config.episodes):
        epsilon = config.epsilon(episode)
        state, _ = env.reset(seed=config.seed + episode)
        action = _choose(q[state], epsilon, rng)
        done = False
        while not done:
            next_state, reward, terminated, truncated, _ = env.step(action)
            returns[episode] += float(reward)
            next_action = _choose(q[next_state], epsilon, rng)
            if terminated:
                target = float(reward)
            elif config.algo == "sarsa":
                target = float(reward) + config.gamma * q[next_state, next_action]
            else:
                target = float(reward) + config.gamma * q[next_state].max()
            q[state, action] += config.learning_rate * (target - q[state, action])
            state, action = next_state, next_action
            done = bool(terminated or truncated)
    return TabularResult(q=q, episode_returns=returns)


def greedy_return(env: Any, q: np.ndarray, seed: int = 0, max_steps: int = 1000) -> float:
    """Return of one greedy episode (bounded by ``max_steps``)."""
    state, _ = env.reset(seed=seed)
    total = 0.0
    for _ in range(max_steps):
        state, reward, terminated, truncated, _ = env.step(int(q[state].argmax()))
        total += float(reward)
        if terminated or truncated:
            break
    return total
