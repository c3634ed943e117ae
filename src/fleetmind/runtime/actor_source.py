"""What an actor steps: environments, a CPU policy copy and its observation statistics.

:class:`SingleAgentSource` collects the ``[T x E]`` chunks of single-agent training;
for a team (``mappo``, ``ippo``) :func:`build_source` picks
:class:`fleetmind.runtime.multiagent_actor.TeamSource`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from fleetmind.algos.loading import actuator_for
from fleetmind.algos.multiagent_base import is_multiagent_algo
from fleetmind.algos.registry import get_algorithm
from fleetmind.config import config_from_mapping
from fleetmind.core.batch import Trajectory
from fleetmind.core.errors import PreconditionError
from fleetmind.core.learning import RolloutPolicy, StepOutput
from fleetmind.core.normalizer import RunningMeanStd
from fleetmind.envs.registry import make_vector_env
from fleetmind.envs.spaces import observation_is_normalisable, vector_spaces
from fleetmind.rpc.generated import training_pb2 as pb
from fleetmind.runtime.collector import RolloutCollector
from fleetmind.runtime.wire import chunk_pb

UNSENT_BATCHES = 1024
"""Batches an actor keeps raw for its delta before folding them (memory bound)."""


@dataclass
class TrackingStats(RunningMeanStd):
    """Running statistics that also keep ``delta``: what this actor saw since its last push.

    The local view folds every batch in at once (the next observation is normalised
    with it); the delta keeps the raw batches and computes their statistics when they
    are sent, so a step pays for one fold, not two.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        self._unsent: list[np.ndarray] = []
        self._folded = RunningMeanStd(self.shape)

    def update(self, data: np.ndarray) -> None:
        """Fold a batch into the local view; keep it for the delta."""
        if data.shape[0] == 0:
            return
        super().update(data)
        self._unsent.append(np.array(data, dtype=np.float64))
        if len(self._unsent) >= UNSENT_BATCHES:  # a long outage: bound the memory
            self._folded.update(np.concatenate(self._unsent))
            self._unsent = []

    @property
    def delta(self) -> RunningMeanStd:
        """Statistics of the batches not yet sent."""
        delta = self._folded.copy()
        if self._unsent:
            delta.update(np.concatenate(self._unsent))
        return delta

    def take_delta(self) -> RunningMeanStd:
        """The delta so far; starts a new one."""
        delta = self.delta
        self._unsent = []
        self._folded = RunningMeanStd(self.shape)
        return delta

    def adopt(self, merged: RunningMeanStd) -> None:
        """Use the learner's merged statistics plus what is not yet sent."""
        view = merged.copy()
        view.merge(self.delta)
        self.mean, self.var, self.count = view.mean, view.var, view.count


class TimedPolicy:
    """Wraps a rollout policy and sums the seconds spent in it."""

    def __init__(self, policy: RolloutPolicy) -> None:
        self.policy = policy
        self.seconds = 0.0

    def step(self, model_input: np.ndarray) -> StepOutput:
        """Forward to the policy, timed."""
        t = time.monotonic()
        out = self.policy.step(model_input)
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


class SingleAgentSource:
    """A vector env, one policy: the ``[T x E]`` chunks of single-agent training."""

    def __init__(self, session: pb.RegisterResponse, envs: int) -> None:
        train = json.loads(session.train_config)
        spec = get_algorithm(session.algo)
        algo_cfg: Any = config_from_mapping(
            spec.config_cls, json.loads(session.algo_config), spec.name
        )
        env = make_vector_env(train["env_id"], envs)
        obs_space, act_space = vector_spaces(env)
        learner = spec.build(algo_cfg, obs_space, act_space, int(session.seed))
        module = getattr(learner, "net", None)
        if not isinstance(module, torch.nn.Module):
            env.close()
            raise PreconditionError(f"algorithm {session.algo} has no network to run in an actor")
        self.module = module
        self.policy = TimedPolicy(learner.rollout_policy())
        normalise = bool(train.get("normalize_obs", True)) and observation_is_normalisable(
            obs_space
        )
        self.obs_stats = TrackingStats(obs_space.shape) if normalise else None
        gamma = float(getattr(algo_cfg, "gamma", 0.99))
        self.collector = RolloutCollector(
            env,
            train["env_id"],
            obs_space,
            act_space,
            int(session.rollout_steps),
            actuator_for(act_space),
            self.obs_stats,
            reward_gamma=gamma if train.get("normalize_reward") else None,
            seed=int(session.seed),
        )
        self._trajectory: Trajectory | None = None
        self._episodes_seen = 0

    def collect(self, version: int) -> float:
        """Collect ``T`` steps of every env copy."""
        before = self.policy.seconds
        self._trajectory = self.collector.collect(self.policy, version)
        return self.policy.seconds - before

    def message(
        self, session_id: str, incarnation: int, times: dict[str, float]
    ) -> pb.TrajectoryChunk:
        """The collected trajectory as a chunk."""
        if self._trajectory is None:
            raise PreconditionError("message() needs a collected trajectory")
        delta = self.obs_stats.take_delta() if self.obs_stats is not None else None
        return chunk_pb(
            self._trajectory, session_id, incarnation, delta, self._new_episodes(), times
        )

    def _new_episodes(self) -> list[tuple[float, int]]:
        stats = self.collector.stats
        new = min(stats.episodes - self._episodes_seen, len(stats.returns))
        self._episodes_seen = stats.episodes
        if new <= 0:
            return []
        return list(zip(list(stats.returns)[-new:], list(stats.lengths)[-new:], strict=True))

    def adopt(self, stats: RunningMeanStd | None) -> None:
        """Normalise with the learner's statistics plus the unsent delta."""
        if stats is not None and self.obs_stats is not None:
            self.obs_stats.adopt(stats)

    def discard_delta(self) -> None:
        """Drop the unsent delta."""
        if self.obs_stats is not None:
            self.obs_stats.take_delta()

    def close(self) -> None:
        """Close the environments."""
        self.collector.env.close()


def build_source(session: pb.RegisterResponse, envs: int) -> ExperienceSource:
    """The experience source for the learner's algorithm (a team one for multi-agent)."""
    if is_multiagent_algo(get_algorithm(session.algo)):
        from fleetmind.runtime.multiagent_actor import TeamSource

        return TeamSource(session, envs)
    return SingleAgentSource(session, envs)
