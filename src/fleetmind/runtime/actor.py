"""An actor process: vectorised environments, a CPU copy of the policy, a learner client.

::

    register -> fetch weights of the current version
    loop:
        trajectory = collect T steps of E envs           # "env" + "inference"
        push the chunk (with this chunk's observation statistics)   # "rpc"
        sync: wait for the next version; async: fetch it when it moved
    until the learner says done

What the actor steps is an :class:`ExperienceSource` chosen by the learner's
algorithm: :class:`SingleAgentSource`, or for a team (``mappo``, ``ippo``)
:class:`fleetmind.runtime.multiagent_actor.TeamSource`.

The learner may vanish (restart, network cut): the actor retries with exponential
backoff and full jitter, forever unless ``give_up_after_s`` is set. When the learner
answers FAILED_PRECONDITION (it restarted and no longer knows the session), the
actor registers again and discards what it collected for the old incarnation.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from fleetmind.algos.base import RolloutPolicy, StepOutput
from fleetmind.algos.loading import actuator_for
from fleetmind.algos.multiagent_base import is_multiagent_algo
from fleetmind.algos.registry import get_algorithm
from fleetmind.core.batch import Trajectory
from fleetmind.core.config import config_from_mapping
from fleetmind.core.errors import PreconditionError, UnavailableError
from fleetmind.core.normalizer import RunningMeanStd
from fleetmind.envs.vector import make_vector_env, observation_is_normalisable, vector_spaces
from fleetmind.rpc.generated import training_pb2 as pb
from fleetmind.runtime.actor_client import LearnerClient
from fleetmind.runtime.collector import RolloutCollector
from fleetmind.runtime.dist_config import ActorConfig
from fleetmind.runtime.weight_store import WeightAssembler
from fleetmind.runtime.wire import chunk_pb

HEARTBEAT_JOIN_S = 15.0
"""Longest an exiting actor waits for a heartbeat call in flight."""

log = logging.getLogger("fleetmind.actor")

SYNC_WAIT_S = 10.0
"""Long-poll length while waiting for the next version in sync mode."""


class TrackingStats(RunningMeanStd):
    """Running statistics that also keep ``delta``: what this actor saw since its last push."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.delta = RunningMeanStd(self.shape)

    def update(self, data: np.ndarray) -> None:
        """Fold a batch into both the local view and the delta."""
        if data.shape[0] == 0:
            return
        batch = RunningMeanStd.from_data(data)
        self.merge(batch)
        self.delta.merge(batch)

    def take_delta(self) -> RunningMeanStd:
        """The delta so far; starts a new one."""
        delta, self.delta = self.delta, RunningMeanStd(self.shape)
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


@dataclass
class Backoff:
    """Exponential backoff with full jitter."""

    initial_s: float
    """First wait's upper bound."""
    max_s: float
    """Largest wait."""
    failures: int = 0
    """Consecutive failures."""
    since: float | None = None
    """When the current run of failures began."""
    rng: random.Random = field(default_factory=random.Random)
    """Jitter source."""

    def wait_s(self) -> float:
        """Seconds to sleep after one more failure."""
        if self.since is None:
            self.since = time.monotonic()
        self.failures += 1
        cap = min(self.max_s, self.initial_s * 2 ** min(self.failures - 1, 30))
        return self.rng.uniform(0.0, cap)

    def reset(self) -> None:
        """A call succeeded."""
        self.failures = 0
        self.since = None


class ActorWorker:
    """Collects for a learner until it says done."""

    def __init__(self, config: ActorConfig, client: LearnerClient) -> None:
        config.validate()
        torch.set_num_threads(1)
        self.config = config
        self.client = client
        self.backoff = Backoff(config.backoff_initial_s, config.backoff_max_s)
        self.stop = threading.Event()
        self.session: pb.RegisterResponse | None = None
        self.version = -1
        self.times = {"env": 0.0, "inference": 0.0, "rpc": 0.0, "wait": 0.0}
        self.chunks_sent = 0
        self.source: ExperienceSource | None = None

    def run(self) -> int:
        """Work until done (0) or unreachable for ``give_up_after_s`` (1)."""
        beat = threading.Thread(target=self._heartbeats, name="heartbeat", daemon=True)
        beat.start()
        try:
            while not self.stop.is_set():
                if not self._guarded(self._cycle):
                    return 1
        finally:
            self.stop.set()
            # A heartbeat in flight while the channel closes and the interpreter exits
            # can abort the process inside gRPC: let it finish first.
            beat.join(timeout=HEARTBEAT_JOIN_S)
            if self.source is not None:
                self.source.close()
        log.info("actor %s exits after %d chunks", self.config.actor_id, self.chunks_sent)
        return 0

    def _guarded(self, step: Callable[[], None]) -> bool:
        try:
            step()
            self.backoff.reset()
        except PreconditionError as exc:
            log.warning("learner refused the session (%s); registering again", exc)
            self.session = None
        except UnavailableError as exc:
            wait = self.backoff.wait_s()
            since = self.backoff.since or time.monotonic()
            limit = self.config.give_up_after_s
            if limit is not None and time.monotonic() - since > limit:
                log.error("learner unreachable for %.0fs; giving up: %s", limit, exc)
                return False
            log.warning("learner unreachable (%s); retrying in %.2fs", exc, wait)
            self.stop.wait(wait)
        return True

    def _cycle(self) -> None:
        if self.session is None:
            self._register()
        session, source = self.session, self.source
        if session is None or source is None:
            return
        t = time.monotonic()
        inference = source.collect(self.version)
        self.times["inference"] += inference
        self.times["env"] += time.monotonic() - t - inference
        times = {k: self.times[k] for k in ("env", "inference", "rpc")}
        msg = source.message(session.session_id, session.incarnation, times)
        for key in self.times:
            self.times[key] = 0.0
        t = time.monotonic()
        response = self.client.push([msg])
        self.times["rpc"] += time.monotonic() - t
        self.chunks_sent += 1
        if response.done:
            self.stop.set()
            return
        if session.mode == "sync":
            while not self.stop.is_set() and not self._fetch(SYNC_WAIT_S):
                pass
        elif response.version > self.version:
            self._fetch(0.0)

    def _register(self) -> None:
        cfg = self.config
        request = pb.RegisterRequest(
            actor_id=cfg.actor_id, num_envs=cfg.envs, env_id=cfg.env_id, pid=os.getpid()
        )
        t = time.monotonic()
        session = self.client.register(request)
        self.times["rpc"] += time.monotonic() - t
        self.session = session  # heartbeats start now, while the environments are built
        if self.source is None:
            self.source = build_source(session, self.config.envs)
        self.version = -1
        self.source.discard_delta()
        while not self.stop.is_set() and not self._fetch(SYNC_WAIT_S):
            pass
        log.info("actor %s registered, policy version %d", cfg.actor_id, self.version)

    def _fetch(self, wait_s: float) -> bool:
        """Fetch a version newer than ours; True when one was loaded."""
        session = self.session
        if session is None or self.source is None:
            return False
        request = pb.GetWeightsRequest(
            session_id=session.session_id,
            incarnation=session.incarnation,
            have_version=self.version,
            wait_s=wait_s,
        )
        t = time.monotonic()
        chunks, first_at = self.client.weights(request)
        self.times["wait"] += first_at - t
        if not chunks:
            return False
        assembler = WeightAssembler()
        for chunk in chunks:
            assembler.add(chunk)
        self.version, stats = assembler.load_into(self.source.module)
        self.source.adopt(stats)
        self.times["rpc"] += time.monotonic() - first_at
        return True

    def _heartbeats(self) -> None:
        while not self.stop.wait(self.config.heartbeat_s):
            session = self.session
            if session is None:
                continue
            try:
                reply = self.client.heartbeat(
                    pb.HeartbeatRequest(
                        session_id=session.session_id, incarnation=session.incarnation
                    )
                )
            except (UnavailableError, PreconditionError):
                continue
            except Exception:  # keep beating whatever one call did
                log.exception("heartbeat failed")
                continue
            if reply.done:
                self.stop.set()


def run_actor(config: ActorConfig, client: LearnerClient) -> int:
    """Run one actor until the learner is done; the exit code."""
    try:
        return ActorWorker(config, client).run()
    finally:
        client.close()
