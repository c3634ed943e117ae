"""A prepared run: what a learner process needs before it serves actors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fleetmind.algos.base import AlgoSpec
from fleetmind.runtime.config import TrainConfig
from fleetmind.runtime.run_dir import RunDir


@dataclass
class RunSetup:
    """A prepared run: configs, run directory, and the checkpoint to resume from."""

    config: TrainConfig
    """The train config."""
    spec: AlgoSpec
    """The algorithm."""
    algo_config: Any
    """Its config."""
    run_dir: RunDir
    """Where everything is written."""
    full_config: dict[str, Any]
    """What config.json holds."""
    state: dict[str, Any] | None = None
    """Checkpoint to resume from, if any."""
