"""Assembling a checkpoint from a training run, and restoring a run from one."""

from __future__ import annotations

import json
from collections import deque
from typing import Any, Protocol

import torch

from fleetmind.algos.checkpoint import stats_from_state, stats_to_state
from fleetmind.core.episodes import EpisodeStats
from fleetmind.core.errors import CheckpointError
from fleetmind.core.learning import Learner
from fleetmind.core.normalizer import RunningMeanStd
from fleetmind.runtime.config import TrainConfig


class RunProgress(Protocol):
    """What a checkpoint records of the data side of a run (a collector, or a learner
    service that gathers the actors' counts)."""

    env_steps: int
    stats: EpisodeStats
    obs_stats: RunningMeanStd | None
    reward_stats: RunningMeanStd | None


def checkpoint_state(
    config: TrainConfig,
    full_config: dict[str, Any],
    learner: Learner,
    collector: RunProgress,
    wall_time_s: float,
) -> dict[str, Any]:
    """Everything needed to resume the run or serve the policy."""
    spaces = {
        "observation": full_config["_spaces"]["observation"],
        "action": full_config["_spaces"]["action"],
    }
    config_json = {k: v for k, v in full_config.items() if k != "_spaces"}
    state: dict[str, Any] = {
        "algo": config.algo,
        "env_id": config.env_id,
        "config": json.dumps(config_json),
        "spaces": json.dumps(spaces),
        "env_steps": collector.env_steps,
        "version": learner.version,
        "learner": learner.state_dict(),
        "rng": {"torch": torch.get_rng_state()},
        "extra": json.dumps(
            {
                "episodes": collector.stats.episodes,
                "recent_returns": list(collector.stats.returns),
                "recent_lengths": list(collector.stats.lengths),
                "wall_time_s": wall_time_s,
            }
        ),
    }
    if collector.obs_stats is not None:
        state["normalizer"] = stats_to_state(collector.obs_stats)
    if collector.reward_stats is not None:
        state["reward_normalizer"] = stats_to_state(collector.reward_stats)
    return state


def restore_run(state: dict[str, Any], learner: Learner, collector: RunProgress) -> dict[str, Any]:
    """Load learner, normalisers, RNG and counters from ``state``; return the extras."""
    try:
        learner.load_state_dict(state["learner"])
        torch.set_rng_state(state["rng"]["torch"])
        extra = json.loads(state["extra"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint cannot be restored: {exc}") from exc
    collector.env_steps = int(state["env_steps"])
    if collector.obs_stats is not None and "normalizer" in state:
        restored = stats_from_state(state["normalizer"], collector.obs_stats.shape)
        collector.obs_stats.mean, collector.obs_stats.var = restored.mean, restored.var
        collector.obs_stats.count = restored.count
    if collector.reward_stats is not None and "reward_normalizer" in state:
        restored = stats_from_state(state["reward_normalizer"], ())
        collector.reward_stats.mean, collector.reward_stats.var = restored.mean, restored.var
        collector.reward_stats.count = restored.count
    stats = collector.stats
    stats.episodes = int(extra.get("episodes", 0))
    stats.returns = deque(extra.get("recent_returns", []), maxlen=stats.window)
    stats.lengths = deque(extra.get("recent_lengths", []), maxlen=stats.window)
    return dict(extra)
