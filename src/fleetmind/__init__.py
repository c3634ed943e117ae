"""fleetmind: train, serve and deploy fleets of AI agents.

import fleetmind

result = fleetmind.train("CartPole-v1", target_return=475, run_dir="runs/cartpole")
agent = fleetmind.load("runs/cartpole")
action = agent.act(observation)
print(fleetmind.evaluate("runs/cartpole", episodes=20).mean_return)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from fleetmind.algos.team import TeamAgent
    from fleetmind.core.agent import Agent
    from fleetmind.runtime.evaluate import EvalResult
    from fleetmind.runtime.trainer import TrainResult


def train(
    env_id: str,
    *,
    algo: str = "ppo",
    algo_config: Any | None = None,
    force: bool = False,
    progress: bool | None = None,
    **settings: Any,
) -> TrainResult:
    """Train ``algo`` on ``env_id``; ``settings`` are TrainConfig fields (steps, seed, ...)."""
    from fleetmind.config import config_from_mapping
    from fleetmind.runtime.config import TrainConfig
    from fleetmind.runtime.local import train as train_local

    config = config_from_mapping(TrainConfig, {"env_id": env_id, "algo": algo, **settings}, "train")
    return train_local(config, algo_config, force=force, progress=progress)


def resume(run_dir: str | Path, progress: bool | None = None, **overrides: Any) -> TrainResult:
    """Continue a run from its latest checkpoint (``steps=`` extends the budget)."""
    from fleetmind.runtime.local import resume as resume_local

    return resume_local(Path(run_dir), overrides, progress=progress)


def load(path: str | Path) -> Agent | TeamAgent:
    """The agent of a run directory's latest checkpoint: ``agent.act(observation)``.

    A multi-agent run gives a team: ``team.act({agent_name: observation, ...})``.
    """
    from fleetmind.algos.team import load_policy

    return load_policy(path)


def evaluate(path: str | Path, episodes: int = 10, seed: int = 0) -> EvalResult:
    """Mean and spread of the return of ``episodes`` episodes."""
    from fleetmind.runtime.evaluate import evaluate as evaluate_run

    return evaluate_run(path, episodes, seed)


__all__ = ["__version__", "evaluate", "load", "resume", "train"]
