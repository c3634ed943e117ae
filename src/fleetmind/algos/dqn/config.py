"""The hyperparameters of DQN, one typed field each (defaults: RL-Zoo's CartPole)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fleetmind.core.errors import ConfigError


@dataclass
class DQNConfig:
    """Hyperparameters of DQN (defaults: RL-Zoo's CartPole settings)."""

    learning_rate: float = 2.3e-3
    """Adam step size."""
    buffer_size: int = 100_000
    """Replay capacity in env steps (all envs together)."""
    learning_starts: int = 1000
    """Env steps collected before the first gradient step."""
    batch_size: int = 64
    """Transitions per gradient step."""
    gamma: float = 0.99
    """Discount factor in [0, 1]."""
    train_frequency: int = 256
    """Env steps (all envs together) between rounds of gradient steps."""
    gradient_steps: int = 128
    """Gradient steps per round."""
    target_update_interval: int = 10
    """Env steps between target-network refreshes."""
    target_tau: float = 1.0
    """Refresh rate: target <- tau * online + (1 - tau) * target (1 = hard copy)."""
    exploration_initial_eps: float = 1.0
    """Epsilon at the start of training."""
    exploration_final_eps: float = 0.04
    """Epsilon after the schedule ends (also used by non-deterministic inference)."""
    exploration_steps: int = 8000
    """Env steps over which epsilon falls linearly to its final value."""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """Widths of the hidden layers of the Q-network."""
    double: bool = True
    """Double DQN: the online network picks the bootstrap action, the target values it."""
    dueling: bool = False
    """Dueling head: Q = V + A - mean(A)."""
    n_step: int = 1
    """Length of the reward sum before bootstrapping."""
    prioritized: bool = False
    """Prioritised replay (proportional, by absolute TD error)."""
    priority_alpha: float = 0.6
    """How strongly priorities shape sampling (0 = uniform)."""
    priority_beta: float = 0.4
    """Initial importance-weight exponent; rises linearly to 1 over priority_beta_steps."""
    priority_beta_steps: int = 100_000
    """Env steps over which beta rises to 1."""
    max_grad_norm: float | None = 10.0
    """Clip the gradient norm to this; None disables clipping."""
    rollout_length: int = 4
    """Steps per env in each chunk handed to update (replay makes small chunks cheap)."""
    replay_in_checkpoint: bool = True
    """Save the replay buffer in checkpoints so that --resume continues exactly."""
    backend: Literal["auto", "torch", "numpy"] = "auto"
    """Gradient steps, target pass and behaviour policy in torch autograd or in numpy
    (hand-written backward, several times faster for small MLPs on a CPU); auto picks
    numpy when it applies."""

    def validate(self) -> None:
        """Raise ConfigError for values outside their ranges."""
        positive = (
            "learning_rate",
            "buffer_size",
            "batch_size",
            "train_frequency",
            "target_update_interval",
            "n_step",
            "rollout_length",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"dqn.{name} must be positive, got {getattr(self, name)}")
        for name in (
            "gamma",
            "target_tau",
            "exploration_initial_eps",
            "exploration_final_eps",
            "priority_alpha",
            "priority_beta",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"dqn.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.gradient_steps < 0 or self.learning_starts < 0:
            raise ConfigError("dqn.gradient_steps and dqn.learning_starts must not be negative")
        if self.buffer_size < self.batch_size:
            raise ConfigError(
                f"dqn.buffer_size ({self.buffer_size}) must be at least "
                f"dqn.batch_size ({self.batch_size})"
            )
