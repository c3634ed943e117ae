"""The training run's configuration (the algorithm's own config is separate)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fleetmind.core.errors import ConfigError


@dataclass
class TrainConfig:
    """What to train, for how long, and where to write it."""

    env_id: str = ""
    """Environment id to train on (``fleetmind envs`` lists them)."""
    algo: str = "ppo"
    """Algorithm name."""
    seed: int = 1
    """Seed of the networks, the sampling and the environments."""
    steps: int = 500_000
    """Environment steps to train for, summed over all environment copies."""
    envs: int = 16
    """Environment copies stepped together in one vector."""
    run_dir: Path | None = None
    """Where config, metrics, checkpoints and plots go (default: runs/ENV-ALGO-TIME)."""
    target_return: float | None = None
    """Stop once the mean return of the last 100 episodes reaches this."""
    normalize_obs: bool = True
    """Standardise box observations with running statistics (one-hot ones are left alone)."""
    normalize_reward: bool = False
    """Divide rewards by a running estimate of the discounted return's standard deviation."""
    checkpoint_interval_s: float = 60.0
    """Seconds between periodic checkpoints (a final one is always written)."""
    log_interval_s: float = 2.0
    """Seconds between metric reports (metrics.jsonl, TensorBoard, log lines)."""
    keep_checkpoints: int = 3
    """Number of newest checkpoints kept on disk."""
    torch_threads: int = 1
    """Threads torch and numpy's BLAS may use; small networks run fastest on one."""
    max_diverged_updates: int = 3
    """Updates in a row whose losses or weights are not finite (each rolled back to the
    last good version) before the run stops, with a checkpoint of that version."""

    def validate(self) -> None:
        """Raise ConfigError for values outside their domain."""
        for name in ("steps", "envs", "keep_checkpoints", "torch_threads", "max_diverged_updates"):
            value = getattr(self, name)
            if value <= 0:
                raise ConfigError(
                    f"--{name.replace('_', '-')} must be a positive integer, got {value}"
                )
        for name in ("checkpoint_interval_s", "log_interval_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be positive")
        if not self.env_id:
            raise ConfigError("an environment id is required (see `fleetmind envs`)")
