"""Assembling a checkpoint from a training run, and restoring a run from one.

One function writes every checkpoint, of a single agent or of a team, in one
process or on a learner service; :class:`RunData` names what it records of the
data side (counters, episode windows, normalisers). Two layouts exist on disk, and
both load with :mod:`fleetmind.algos.loading`: a single-agent run keeps
``spaces = {observation, action}`` with ``normalizer``/``reward_normalizer``; a
team run keeps ``spaces = {team}`` with ``normalizers`` (and
``reward_normalizers``) keyed by agent name.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from fleetmind.algos.checkpoint import stats_from_state, stats_to_state
from fleetmind.core.episodes import AgentReturns, EpisodeStats
from fleetmind.core.errors import CheckpointError
from fleetmind.core.normalizer import RunningMeanStd
from fleetmind.runtime.config import TrainConfig

STATE_KEY = "__state__"
"""Key of the global state's normaliser among a team checkpoint's normalisers."""


@dataclass
class RunData:
    """What a checkpoint records of the data side of a run (views, not copies)."""

    env_steps: int
    """Environment steps so far."""
    stats: EpisodeStats
    """Team returns and lengths of the latest episodes."""
    agents: tuple[str, ...]
    """Agent names in order."""
    obs_stats: Sequence[RunningMeanStd | None]
    """Each agent's observation statistics (None: not normalised)."""
    state_stats: RunningMeanStd | None = None
    """The global state's statistics."""
    reward_stats: Sequence[RunningMeanStd] | None = None
    """Each agent's discounted-return statistics (None: rewards not scaled)."""
    agent_returns: AgentReturns | None = None
    """Per agent: returns of the latest episodes (None, or no agents, for a single
    agent: its returns are the team's)."""


def checkpoint_state(
    config: TrainConfig,
    full_config: dict[str, Any],
    learner: Any,
    data: RunData,
    wall_time_s: float,
) -> dict[str, Any]:
    """Everything needed to resume the run or serve the policy.

    ``learner`` has ``version`` and ``state_dict()``; ``full_config`` holds the
    spaces under ``_team`` (a team run) or ``_spaces`` (a single agent).
    """
    team = "_team" in full_config
    extra: dict[str, Any] = {
        "episodes": data.stats.episodes,
        "recent_returns": list(data.stats.returns),
        "recent_lengths": list(data.stats.lengths),
        "wall_time_s": wall_time_s,
    }
    if team:
        spaces: dict[str, Any] = {"team": full_config["_team"]}
        extra["agent_returns"] = (
            [] if data.agent_returns is None else [list(w) for w in data.agent_returns.windows]
        )
    else:
        spaces = {k: full_config["_spaces"][k] for k in ("observation", "action")}
    state: dict[str, Any] = {
        "algo": config.algo,
        "env_id": config.env_id,
        "config": json.dumps(
            {k: v for k, v in full_config.items() if k not in ("_team", "_spaces")}
        ),
        "spaces": json.dumps(spaces),
        "env_steps": data.env_steps,
        "version": learner.version,
        "learner": learner.state_dict(),
        "rng": {"torch": torch.get_rng_state()},
        "extra": json.dumps(extra),
    }
    state.update(_normalizer_entries(data, team))
    return state


def _normalizer_entries(data: RunData, team: bool) -> dict[str, Any]:
    rewards = list(data.reward_stats or [])
    if not team:
        out: dict[str, Any] = {}
        if data.obs_stats and data.obs_stats[0] is not None:
            out["normalizer"] = stats_to_state(data.obs_stats[0])
        if rewards:
            out["reward_normalizer"] = stats_to_state(rewards[0])
        return out
    normalizers = {
        agent: stats_to_state(stats)
        for agent, stats in zip(data.agents, data.obs_stats, strict=True)
        if stats is not None
    }
    if data.state_stats is not None:
        normalizers[STATE_KEY] = stats_to_state(data.state_stats)
    out = {"normalizers": normalizers}
    if rewards:
        out["reward_normalizers"] = {
            agent: stats_to_state(s) for agent, s in zip(data.agents, rewards, strict=True)
        }
    return out


def restore_run(state: dict[str, Any], learner: Any, data: RunData) -> dict[str, Any]:
    """Load the learner, RNG, normalisers and episode windows of ``state`` into
    ``learner`` and the objects ``data`` views; return the extras (``env_steps`` is
    the caller's to set from ``state["env_steps"]``)."""
    try:
        learner.load_state_dict(state["learner"])
        torch.set_rng_state(state["rng"]["torch"])
        extra: dict[str, Any] = json.loads(state["extra"])
        int(state["env_steps"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint cannot be restored: {exc}") from exc
    restore_normalizers(state, data)
    window = data.stats
    window.episodes = int(extra.get("episodes", 0))
    window.returns = deque(extra.get("recent_returns", []), maxlen=window.window)
    window.lengths = deque(extra.get("recent_lengths", []), maxlen=window.window)
    for returns, saved_returns in zip(
        [] if data.agent_returns is None else data.agent_returns.windows,
        extra.get("agent_returns", []),
        strict=False,
    ):
        returns.extend(saved_returns)
    return extra


def restore_normalizers(state: dict[str, Any], data: RunData) -> None:
    """Load the saved statistics of ``state`` into those ``data`` views (where both exist)."""
    for stats, saved in _saved_normalizers(state, data):
        restored = stats_from_state(saved, stats.shape)
        stats.mean, stats.var, stats.count = restored.mean, restored.var, restored.count


def _saved_normalizers(state: dict[str, Any], data: RunData) -> list[tuple[RunningMeanStd, Any]]:
    """``(live statistics, saved state)`` pairs present on both sides."""
    rewards = list(data.reward_stats or [])
    if "normalizers" not in state:  # a single-agent checkpoint
        pairs = [(data.obs_stats[0] if data.obs_stats else None, state.get("normalizer"))]
        pairs.append((rewards[0] if rewards else None, state.get("reward_normalizer")))
    else:
        saved = state["normalizers"]
        saved_rewards = state.get("reward_normalizers", {})
        pairs = [(s, saved.get(a)) for a, s in zip(data.agents, data.obs_stats, strict=True)]
        pairs.append((data.state_stats, saved.get(STATE_KEY)))
        pairs += [(s, saved_rewards.get(a)) for a, s in zip(data.agents, rewards, strict=False)]
    return [(live, saved) for live, saved in pairs if live is not None and saved is not None]
