"""The settings of tabular Q-learning and SARSA under ``fleetmind train`` (no torch)."""

from __future__ import annotations

from dataclasses import dataclass

from fleetmind.core.errors import ConfigError


@dataclass
class TabularLearnerConfig:
    """Settings of tabular Q-learning and SARSA under ``fleetmind train``."""

    learning_rate: float = 0.1
    """Step size of each table update, in (0, 1]."""
    gamma: float = 0.99
    """Discount factor in [0, 1]."""
    epsilon_start: float = 1.0
    """Exploration probability at the start."""
    epsilon_end: float = 0.05
    """Exploration probability once the schedule ends."""
    exploration_steps: int = 50_000
    """Env steps (all copies together) over which epsilon falls linearly."""
    rollout_steps: int = 1
    """Steps per environment between table updates."""

    def validate(self) -> None:
        """Raise ConfigError for values outside their domain."""
        if not 0.0 < self.learning_rate <= 1.0:
            raise ConfigError(f"learning_rate must lie in (0, 1], got {self.learning_rate}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ConfigError(f"gamma must lie in [0, 1], got {self.gamma}")
        for name in ("epsilon_start", "epsilon_end"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        if self.exploration_steps <= 0 or self.rollout_steps <= 0:
            raise ConfigError("exploration_steps and rollout_steps must be positive")
