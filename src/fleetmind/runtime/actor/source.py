"""What an actor steps: environments, a CPU policy copy and its observation statistics.

One source for a single agent and for a team: the run's parts
(:func:`fleetmind.runtime.parts.build_parts`) give the env copies, the learner
whose networks the learner service's weights load into, and the statistics; the
one collector steps them. A team holds every network, critics included, so the
values (for MAPPO, of the centralised critic on the global state) are computed
where the data is, exactly as in single-process training::

    source = ActorSource(session, envs)       # builds env copies, networks, statistics
    inference_s = source.collect(version)     # T steps of E copies, every agent
    chunk = source.chunk(session, times)     # for the session (id, incarnation, secret)
    source.load(weights)                      # a version and its merged statistics
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from fleetmind.algos.registry import get_algorithm
from fleetmind.config import config_from_mapping
from fleetmind.core.batch import Trajectory
from fleetmind.core.errors import ConfigError, PreconditionError
from fleetmind.core.exchange import Chunk, SessionInfo, Weights
from fleetmind.core.learning import StepOutput, TeamRolloutPolicy
from fleetmind.core.normalizer import RunningMeanStd, concat_stats
from fleetmind.runtime.actor.tracking_stats import TrackingStats
from fleetmind.runtime.chunk_format import ChunkFormat
from fleetmind.runtime.learner.weight_store import load_weights
from fleetmind.runtime.parts import RunParts, broadcast_module, build_parts


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

    def collect(self, version: int) -> float:
        """Collect the next chunk with policy ``version``; the seconds spent in inference."""
        ...

    def chunk(self, session: SessionInfo, times: dict[str, float]) -> Chunk:
        """The collected chunk of ``session`` (with the statistics delta and new episodes)."""
        ...

    def load(self, weights: Weights) -> None:
        """Act with a version the learner published (and normalise with its statistics)."""
        ...

    def discard_delta(self) -> None:
        """Forget statistics not yet sent (the learner that would merge them is gone)."""
        ...

    def close(self) -> None:
        """Close the environments."""
        ...


class CollectingSource:
    """Steps a run's parts with its learner's rollout policy and cuts chunks."""

    def __init__(
        self,
        parts: RunParts,
        chunk_format: ChunkFormat,
        algo_config: Any,
        train_config: dict[str, Any],
        rollout_steps: int,
        seed: int,
    ) -> None:
        self.parts = parts
        self.format = chunk_format
        gamma = float(getattr(algo_config, "gamma", 0.99))
        self.collector = parts.collector(
            rollout_steps,
            reward_gamma=gamma if train_config.get("normalize_reward") else None,
            seed=seed,
        )
        self.policy = TimedPolicy(parts.learner.rollout_policy())
        self._trajectories: list[Trajectory] | None = None

    def collect(self, version: int) -> float:
        """Collect ``T`` steps of every env copy, for every agent."""
        before = self.policy.seconds
        self._trajectories = self.collector.collect(self.policy, version)
        return self.policy.seconds - before

    def chunk(self, session: SessionInfo, times: dict[str, float]) -> Chunk:
        """The collected trajectories as one chunk, every agent's own observations."""
        if self._trajectories is None:
            raise PreconditionError("chunk() needs a collected trajectory")
        own, state = self.format.split_inputs(self._trajectories)
        delta = self.take_delta()
        episodes = self.collector.take_episodes()
        return Chunk(
            own,
            state,
            delta,
            episodes,
            times,
            session_id=session.session_id,
            incarnation=session.incarnation,
            session_secret=session.session_secret,
            raw_rewards=self.collector.raw_rewards(),
        )

    def take_delta(self) -> RunningMeanStd | None:
        """Observation statistics the learner has not seen (none by default)."""
        return None


class ActorSource(CollectingSource):
    """Env copies stepped by a CPU copy of the learner's network(s)."""

    def __init__(self, session: SessionInfo, envs: int) -> None:
        train = session.train_config
        spec = get_algorithm(session.algo)
        algo_cfg: Any = config_from_mapping(spec.config_cls, session.algo_config, spec.name)
        parts = build_parts(
            train["env_id"],
            spec,
            algo_cfg,
            envs=envs,
            seed=int(session.seed),
            normalize_obs=bool(train.get("normalize_obs", True)),
            stats=TrackingStats,
        )
        try:
            self.module = broadcast_module(parts.learner)
            chunk_format = ChunkFormat(parts, int(session.rollout_steps))
        except ConfigError as exc:
            parts.env.close()
            raise PreconditionError(f"algorithm {session.algo}: {exc}") from exc
        super().__init__(
            parts, chunk_format, algo_cfg, train, int(session.rollout_steps), int(session.seed)
        )

    @property
    def _parts(self) -> list[TrackingStats | None]:
        stats = [*self.parts.obs_stats, self.parts.state_stats]
        return [s if isinstance(s, TrackingStats) else None for s in stats]

    def take_delta(self) -> RunningMeanStd | None:
        """What this actor's statistics saw since its last chunk, as one vector."""
        return concat_stats([None if p is None else p.take_delta() for p in self._parts])

    def load(self, weights: Weights) -> None:
        """Copy a version into the policy's networks; adopt its statistics."""
        load_weights(self.module, weights)
        self.adopt(weights.obs_stats)

    def adopt(self, stats: RunningMeanStd | None) -> None:
        """Normalise with the learner's merged statistics plus the unsent deltas."""
        if stats is None:
            return
        parts = self._parts
        for part, part_stats in zip(parts, self.format.split(stats), strict=True):
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
