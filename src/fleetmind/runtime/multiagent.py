"""Single-process training of a team on a multi-agent (PettingZoo) environment.

``fleetmind.runtime.local`` sends multi-agent env ids here. The loop is
:class:`LocalTrainer`'s (collect -> update -> report/checkpoint); this module swaps
in the multi-agent collector and learner, adds per-agent returns to each report
(``return_mean/<agent>``; ``episode_return_mean`` is the team return, the sum over
agents) and writes checkpoints that hold every agent's network and normaliser.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol, cast

import torch

from fleetmind.algos.base import AlgoSpec
from fleetmind.algos.checkpoint import stats_from_state, stats_to_state
from fleetmind.algos.loading import actuator_for
from fleetmind.algos.multiagent_base import MultiAgentAlgoSpec, MultiAgentLearner
from fleetmind.core.episodes import EpisodeStats
from fleetmind.core.errors import CheckpointError, ConfigError
from fleetmind.core.normalizer import RunningMeanStd
from fleetmind.envs.registry import lookup_env, make_team_vector_env
from fleetmind.envs.spaces import observation_is_normalisable
from fleetmind.nn.threads import limit_threads
from fleetmind.runtime.config import TrainConfig
from fleetmind.runtime.multiagent_collector import MultiAgentCollector
from fleetmind.runtime.run_dir import RunDir
from fleetmind.runtime.trainer import LocalTrainer, TrainResult


class TeamProgress(Protocol):
    """What a team checkpoint records of the data side of a run (the collector, or a
    learner service that gathers its actors' counts)."""

    env_steps: int
    stats: EpisodeStats
    agent_returns: list[deque[float]]

    @property
    def agents(self) -> tuple[str, ...]:
        """Agent names in order."""
        ...

    @property
    def agent_obs_stats(self) -> Sequence[RunningMeanStd | None]:
        """Each agent's observation statistics (None: not normalised)."""
        ...

    @property
    def state_stats(self) -> RunningMeanStd | None:
        """The global state's statistics."""
        ...


STATE_KEY = "__state__"
"""Key of the global state's normaliser among the checkpoint's normalisers."""


def check_pairing(config: TrainConfig, spec: AlgoSpec) -> MultiAgentAlgoSpec | None:
    """The multi-agent spec when env and algorithm are both multi-agent; None when both
    are single-agent; ConfigError when they do not match."""
    entry = lookup_env(config.env_id)
    multi_env = entry.is_team
    if isinstance(spec, MultiAgentAlgoSpec):
        if not multi_env:
            raise ConfigError(
                f"{spec.name} trains multi-agent (PettingZoo) environments and "
                f"{config.env_id} is single-agent; use --algo ppo"
            )
        return spec
    if multi_env and not entry.has_single_agent_form:
        raise ConfigError(
            f"{spec.name} is a single-agent algorithm and {config.env_id} is a multi-agent "
            "environment; use --algo mappo (shared actor, centralised critic) or --algo ippo "
            "(independent learners)"
        )
    return None


def preflight(config: TrainConfig, spec: AlgoSpec, algo_cfg: Any) -> None:
    """Raise the env/algorithm mismatch errors before a run directory is created."""
    team_spec = check_pairing(config, spec)
    if team_spec is None:
        return
    if config.normalize_reward:
        raise ConfigError("--normalize-reward is not supported for multi-agent training yet")
    env = make_team_vector_env(config.env_id, 1)
    try:
        team_spec.build_team(algo_cfg, env.spec, config.seed)  # checks spaces and switches
    finally:
        env.close()


class MultiAgentTrainer(LocalTrainer):
    """:class:`LocalTrainer` with per-agent reports and multi-agent checkpoints."""

    def __init__(
        self,
        config: TrainConfig,
        full_config: dict[str, Any],
        spec: MultiAgentAlgoSpec,
        learner: MultiAgentLearner,
        collector: MultiAgentCollector,
        run_dir: RunDir,
        progress: bool | None = None,
        start: dict[str, Any] | None = None,
    ) -> None:
        # The base loop only calls collect/update/stats/env_steps, which both provide.
        super().__init__(
            config, full_config, spec, cast(Any, learner), cast(Any, collector), run_dir,
            progress, start,
        )  # fmt: skip
        self.team_learner = learner
        self.team_collector = collector

    def _record(self, metrics: dict[str, float], elapsed: float, rate: float) -> dict[str, Any]:
        record = super()._record(metrics, elapsed, rate)
        for agent, mean in self.team_collector.agent_return_means().items():
            record[f"return_mean/{agent}"] = mean
        return record

    def _checkpoint(self, elapsed: float) -> None:
        state = team_checkpoint_state(
            self.config,
            self.full_config,
            self.team_learner,
            self.team_collector,
            self.wall_offset + elapsed,
        )
        self.run_dir.checkpoints.save(state)


def team_checkpoint_state(
    config: TrainConfig,
    full_config: dict[str, Any],
    learner: MultiAgentLearner,
    collector: TeamProgress,
    wall_time_s: float,
) -> dict[str, Any]:
    """Everything needed to resume the run or load the team (format of
    :mod:`fleetmind.algos.checkpoint`; ``spaces`` holds the team's description)."""
    config_json = {k: v for k, v in full_config.items() if k != "_team"}
    normalizers = {
        agent: stats_to_state(stats)
        for agent, stats in zip(collector.agents, collector.agent_obs_stats, strict=True)
        if stats is not None
    }
    if collector.state_stats is not None:
        normalizers[STATE_KEY] = stats_to_state(collector.state_stats)
    return {
        "algo": config.algo,
        "env_id": config.env_id,
        "config": json.dumps(config_json),
        "spaces": json.dumps({"team": full_config["_team"]}),
        "env_steps": collector.env_steps,
        "version": learner.version,
        "learner": learner.state_dict(),
        "normalizers": normalizers,
        "rng": {"torch": torch.get_rng_state()},
        "extra": json.dumps(
            {
                "episodes": collector.stats.episodes,
                "recent_returns": list(collector.stats.returns),
                "recent_lengths": list(collector.stats.lengths),
                "agent_returns": [list(r) for r in collector.agent_returns],
                "wall_time_s": wall_time_s,
            }
        ),
    }


def restore_team_run(
    state: dict[str, Any], learner: MultiAgentLearner, collector: TeamProgress
) -> dict[str, Any]:
    """Load learner, normalisers, RNG and counters from ``state``; return the extras."""
    try:
        learner.load_state_dict(state["learner"])
        torch.set_rng_state(state["rng"]["torch"])
        extra: dict[str, Any] = json.loads(state["extra"])
        normalizers = state.get("normalizers", {})
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint cannot be restored: {exc}") from exc
    collector.env_steps = int(state["env_steps"])
    named = zip(collector.agents, collector.agent_obs_stats, strict=True)
    pairs = [*named, (STATE_KEY, collector.state_stats)]
    for key, stats in pairs:
        if stats is not None and key in normalizers:
            restored = stats_from_state(normalizers[key], stats.shape)
            stats.mean, stats.var, stats.count = restored.mean, restored.var, restored.count
    stats_window = collector.stats
    stats_window.episodes = int(extra.get("episodes", 0))
    stats_window.returns.extend(extra.get("recent_returns", []))
    stats_window.lengths.extend(extra.get("recent_lengths", []))
    for returns, saved in zip(
        collector.agent_returns, extra.get("agent_returns", []), strict=False
    ):
        returns.extend(saved)
    return extra


def run_multiagent(
    config: TrainConfig,
    spec: MultiAgentAlgoSpec,
    algo_cfg: Any,
    run_dir: RunDir,
    full: dict[str, Any],
    progress: bool | None,
    state: dict[str, Any] | None,
) -> TrainResult:
    """Train ``spec`` on the multi-agent env ``config.env_id`` (from ``state`` if given)."""
    if config.normalize_reward:
        raise ConfigError("--normalize-reward is not supported for multi-agent training yet")
    limit_threads(config.torch_threads)
    env = make_team_vector_env(config.env_id, config.envs)
    try:
        team = env.spec
        learner = spec.build_team(algo_cfg, team, config.seed)
        learner.total_env_steps = config.steps

        def stats_for(space: Any) -> RunningMeanStd | None:
            wanted = config.normalize_obs and observation_is_normalisable(space)
            return RunningMeanStd(space.shape) if wanted else None

        env_seed = config.seed if state is None else config.seed + 7919 * int(state["env_steps"])
        collector = MultiAgentCollector(
            env,
            learner.layout,
            spec.rollout_length(algo_cfg),
            [actuator_for(s) for s in team.action_spaces],
            [stats_for(s) for s in team.observation_spaces],
            None if team.state_space is None else stats_for(team.state_space),
            seed=env_seed,
        )
        full = {**full, "_team": team.to_json()}
        start = restore_team_run(state, learner, collector) if state is not None else None
        trainer = MultiAgentTrainer(
            config, full, spec, learner, collector, run_dir, progress, start
        )
        return trainer.run()
    finally:
        env.close()
