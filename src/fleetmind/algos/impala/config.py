"""The hyperparameters of IMPALA, one typed field each (no torch: the CLI reads them)."""

from __future__ import annotations

from dataclasses import dataclass

from fleetmind.core.errors import ConfigError


@dataclass
class ImpalaConfig:
    """Hyperparameters of IMPALA."""

    rollout_steps: int = 32
    """Steps per environment in each chunk an actor sends (T)."""
    learning_rate: float = 1e-3
    """Adam step size."""
    gamma: float = 0.98
    """Discount factor."""
    rho_bar: float = 1.0
    """Clip of the importance ratio in the targets and the policy gradient."""
    c_bar: float = 1.0
    """Clip of the trace-cutting ratio."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    ent_coef: float = 0.01
    """Weight of the entropy bonus."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clipping threshold."""
    sgd_steps: int = 2
    """Gradient steps per batch (each recomputes the V-trace targets)."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Widths of the hidden layers of the actor and of the critic."""
    activation: str = "tanh"
    """Hidden activation: tanh, relu or elu."""
    init_log_std: float = 0.0
    """Initial log standard deviation of Gaussian actions."""

    def validate(self) -> None:
        """Raise ConfigError for values outside their domain."""
        for name in ("rollout_steps", "learning_rate", "rho_bar", "c_bar", "sgd_steps"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"impala.{name} must be positive, got {getattr(self, name)}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ConfigError("impala.gamma must lie in [0, 1]")
        if self.activation not in ("tanh", "relu", "elu"):
            raise ConfigError(f"impala.activation must be tanh, relu or elu, not {self.activation}")
