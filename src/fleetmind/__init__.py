"""fleetmind: train, serve and deploy fleets of AI agents.

import fleetmind

result = fleetmind.train("CartPole-v1", target_return=475, run_dir="runs/cartpole")
result = fleetmind.train("CartPole-v1", actors=2, run_dir="runs/cp2")  # 2 actor processes
agent = fleetmind.load("runs/cartpole")
action = agent.act(observation)
print(fleetmind.evaluate("runs/cartpole", episodes=20).mean_return)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from fleetmind.algos.team.loading import TeamAgent
    from fleetmind.core.agent import Agent
    from fleetmind.runtime.evaluate import EvalResult
    from fleetmind.runtime.result import TrainResult


def train(
    env_id: str,
    *,
    algo: str = "ppo",
    algo_config: Any | None = None,
    actors: int = 0,
    learners: int = 1,
    mode: str = "sync",
    force: bool = False,
    progress: bool | None = None,
    **settings: Any,
) -> TrainResult:
    """Train ``algo`` on ``env_id`` and write a run directory; the same run as ``fleetmind train``.

    ``actors=0`` trains in this process. ``actors=N`` serves a learner here and starts N
    actor processes (``mode="sync"``: PPO, MAPPO, IPPO; ``mode="async"``: V-trace with
    ``algo="impala"``, or ``algo="team-impala"`` for a team);
    ``learners=L`` > 1 starts L learner processes that share every update
    (docs/distributed.md). ``settings`` are the other flags of ``fleetmind train``
    with underscores: ``steps``, ``seed``, ``envs``, ``run_dir``, ``target_return``, ...
    and ``max_policy_lag``, ``sync_timeout_s``, ... ``algo_config`` is the algorithm's
    config dataclass or a mapping of its fields. An unknown setting or a bad value
    raises :class:`~fleetmind.core.errors.ConfigError` before anything starts.
    """
    from fleetmind.runtime.launch.train_plan import plan_training

    dist = {"actors": actors, "learners": learners, "mode": mode}
    plan = plan_training(
        env_id,
        algo=algo,
        algo_config=algo_config,
        settings={**dist, **settings},
        force=force,
        progress=progress,
    )
    return plan.run()


def resume(run_dir: str | Path, progress: bool | None = None, **overrides: Any) -> TrainResult:
    """Continue a run from its latest checkpoint, with actor processes if it had them.

    ``steps=`` extends the budget; ``actors=``, ``mode=``, ... change the distributed
    settings, as ``fleetmind train --resume DIR`` flags do.
    """
    from fleetmind.runtime.launch.train_plan import plan_resume

    return plan_resume(run_dir, overrides, progress).run()


def load(path: str | Path) -> Agent | TeamAgent:
    """The agent of a run directory's latest checkpoint: ``agent.act(observation)``.

    A multi-agent run gives a team: ``team.act({agent_name: observation, ...})``.
    """
    from fleetmind.algos.team.loading import load_policy

    return load_policy(path)


def evaluate(path: str | Path, episodes: int = 10, seed: int = 0) -> EvalResult:
    """Mean and spread of the return of ``episodes`` episodes."""
    from fleetmind.runtime.evaluate import evaluate as evaluate_run

    return evaluate_run(path, episodes, seed)


__all__ = ["__version__", "evaluate", "load", "resume", "train"]
