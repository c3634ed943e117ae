"""What an actor steps: environments, a CPU policy copy and its observation statistics.

One source for a single agent and for a team: the run's parts
(:func:`fleetmind.runtime.parts.build_parts`) give the env copies, the learner
whose networks the learner service's weights load into, and the statistics; the
one collector steps them. A team holds every network, critics included, so the
values (for MAPPO, of the centralised critic on the global state) are computed
where the data is, exactly as in single-process training::

    source = ActorSource(session, envs)       # builds env copies, networks, statistics
    inference_s = source.collect(version)     # T steps of E copies, every agent
    msg = source.message(session_id, incarnation, times)
    ... load weights into source.module; source.adopt(merged statistics)
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch

from fleetmind.algos.registry import get_algorithm
from fleetmind.config import config_from_mapping
from fleetmind.core.batch import Trajectory
from fleetmind.core.errors import ConfigError, PreconditionError
from fleetmind.core.learning import StepOutput, TeamRolloutPolicy
from fleetmind.core.normalizer import RunningMeanStd
from fleetmind.rpc.generated import training_pb2 as pb
from fleetmind.rpc.team_codec import TeamEpisode, concat_stats, split_stats, team_chunk_pb
from fleetmind.rpc.training_codec import chunk_pb
from fleetmind.runtime.actor.tracking_stats import TrackingStats
from fleetmind.runtime.parts import RunParts, broadcast_module, build_parts, team_layout


class TimedPolicy:
    """Wraps a team rollout policy and sums the seconds spent in it."""

    def __init__(self, policy: TeamRolloutPolicy) -> None:
        self.policy = policy
        self.seconds = 0.0

    def step(self, model_inputs: Sequence[np.ndarray]) -> list[StepOutput]:
        """Forward to the policy, timed."""
        t = time.monotonic()
        out = self.policy.step(model_inputs)
        self.seconds += time.monotonic() - t
        return out


class ExperienceSource(Protocol):
    """What an actor steps: environments, a CPU policy copy and its statistics."""

    module: torch.nn.Module
    """The network(s) the learner's weights load into."""

    def collect(self, version: int) -> float:
        """Collect the next chunk with policy ``version``; the seconds spent in inference."""
        ...

    def message(
        self, session_id: str, incarnation: int, times: dict[str, float]
    ) -> pb.TrajectoryChunk:
        """The collected chunk as a message (with the statistics delta and new episodes)."""
        ...

    def adopt(self, stats: RunningMeanStd | None) -> None:
        """Use the learner's merged observation statistics (None: it sent none)."""
        ...

    def discard_delta(self) -> None:
        """Forget statistics not yet sent (the learner that would merge them is gone)."""
        ...

    def close(self) -> None:
        """Close the environments."""
        ...


class ActorSource:
    """Env copies stepped by a CPU copy of the learner's network(s)."""

    def __init__(self, session: pb.RegisterResponse, envs: int) -> None:
        train = json.loads(session.train_config)
        spec = get_algorithm(session.algo)
        algo_cfg: Any = config_from_mapping(
            spec.config_cls, json.loads(session.algo_config), spec.name
        )
        self.parts: RunParts = build_parts(
            train["env_id"],
            spec,
            algo_cfg,
            envs=envs,
            seed=int(session.seed),
            normalize_obs=bool(train.get("normalize_obs", True)),
            stats=TrackingStats,
        )
        try:
            self.module = broadcast_module(self.parts.learner)
            self.layout = team_layout(self.parts.learner) if self.parts.team else None
        except ConfigError as exc:
            self.parts.env.close()
            raise PreconditionError(f"algorithm {session.algo}: {exc}") from exc
        self.policy = TimedPolicy(self.parts.learner.rollout_policy())
        gamma = float(getattr(algo_cfg, "gamma", 0.99))
        self.collector = self.parts.collector(
            int(session.rollout_steps),
            reward_gamma=gamma if train.get("normalize_reward") else None,
            seed=int(session.seed),
        )
        self._trajectories: list[Trajectory] | None = None
        self._episodes_seen = 0

    @property
    def _parts(self) -> list[TrackingStats | None]:
        stats = [*self.parts.obs_stats, self.parts.state_stats]
        return [s if isinstance(s, TrackingStats) else None for s in stats]

    def collect(self, version: int) -> float:
        """Collect ``T`` steps of every env copy, for every agent."""
        before = self.policy.seconds
        self._trajectories = self.collector.collect(self.policy, version)
        return self.policy.seconds - before

    def message(
        self, session_id: str, incarnation: int, times: dict[str, float]
    ) -> pb.TrajectoryChunk:
        """The collected trajectories as one chunk (a team chunk for a team)."""
        if self._trajectories is None:
            raise PreconditionError("message() needs a collected trajectory")
        deltas = [None if p is None else p.take_delta() for p in self._parts]
        episodes = self._new_episodes()
        if self.layout is None:
            pairs = [(e.team_return, e.length) for e in episodes]
            return chunk_pb(self._trajectories[0], session_id, incarnation, deltas[0], pairs, times)
        return team_chunk_pb(
            self._trajectories,
            self.layout,
            session_id,
            incarnation,
            concat_stats(deltas),
            episodes,
            times,
        )

    def _new_episodes(self) -> list[TeamEpisode]:
        stats = self.collector.stats
        new = min(stats.episodes - self._episodes_seen, len(stats.returns))
        self._episodes_seen = stats.episodes
        if new <= 0:
            return []
        per_agent = [list(r)[-new:] for r in self.collector.agent_returns.windows]
        rows = zip(list(stats.returns)[-new:], list(stats.lengths)[-new:], strict=True)
        return [
            TeamEpisode(ret, length, tuple(agent[k] for agent in per_agent))
            for k, (ret, length) in enumerate(rows)
        ]

    def adopt(self, stats: RunningMeanStd | None) -> None:
        """Normalise with the learner's merged statistics plus the unsent deltas."""
        if stats is None:
            return
        parts = self._parts
        merged = [stats, None] if self.layout is None else split_stats(stats, parts)
        for part, part_stats in zip(parts, merged, strict=True):
            if part is not None and part_stats is not None:
                part.adopt(part_stats)

    def discard_delta(self) -> None:
        """Drop the unsent deltas."""
        for part in self._parts:
            if part is not None:
                part.take_delta()

    def close(self) -> None:
        """Close the environments."""
        self.parts.env.close()
