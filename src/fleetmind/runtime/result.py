"""What a training run reports when it ends (also written to summary.json)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainResult:
    """Outcome of a training run (also written to summary.json)."""

    run_dir: str
    """The run directory."""
    solved: bool
    """Whether the target return was reached."""
    solved_at_env_steps: int | None
    """Env steps when it was reached, else None."""
    solved_at_wall_time_s: float | None
    """Wall time in seconds when it was reached, else None."""
    env_steps: int
    """Env steps consumed in total."""
    wall_time_s: float
    """Training wall time in seconds, over all resumptions."""
    episodes: int
    """Episodes finished."""
    episode_return_mean: float | None
    """Mean return of the last 100 episodes."""
    interrupted: bool
    """True if SIGINT or SIGTERM stopped the run."""
