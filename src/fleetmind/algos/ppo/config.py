"""The hyperparameters of PPO, one typed field each (defaults: CartPole-ready settings)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fleetmind.core.errors import ConfigError


@dataclass
class PPOConfig:
    """Hyperparameters of PPO."""

    rollout_steps: int = 32
    """Steps per environment collected before each update (T)."""
    learning_rate: float = 1e-3
    """Adam step size at the start of training."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to zero over the step budget."""
    gamma: float = 0.98
    """Discount factor."""
    gae_lambda: float = 0.8
    """GAE lambda: bias/variance trade-off of advantage estimates."""
    update_epochs: int = 10
    """Passes over each rollout."""
    minibatch_size: int = 256
    """Samples per gradient step."""
    clip_coef: float = 0.2
    """PPO ratio clipping range."""
    clip_value: bool = False
    """Clip the value update to the same range as the ratio."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clipping threshold."""
    norm_adv: bool = True
    """Normalise advantages within each minibatch."""
    target_kl: float | None = None
    """Stop the epochs of an update early once the approximate KL exceeds this."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Widths of the hidden layers of the actor and of the critic."""
    activation: str = "tanh"
    """Hidden activation: tanh, relu or elu."""
    init_log_std: float = 0.0
    """Initial log standard deviation of Gaussian actions."""
    backend: Literal["auto", "torch", "numpy"] = "auto"
    """Gradient steps in torch autograd or in numpy (hand-written backward, several
    times faster for small tanh/relu MLPs on a CPU); auto picks numpy when it applies."""

    def validate(self) -> None:
        """Raise ConfigError for values outside their domain."""
        positive = ("rollout_steps", "update_epochs", "minibatch_size", "learning_rate")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"ppo.{name} must be positive, got {getattr(self, name)}")
        if not 0.0 <= self.gamma <= 1.0 or not 0.0 <= self.gae_lambda <= 1.0:
            raise ConfigError("ppo.gamma and ppo.gae_lambda must lie in [0, 1]")
        if self.activation not in ("tanh", "relu", "elu"):
            raise ConfigError(f"ppo.activation must be tanh, relu or elu, got {self.activation!r}")
