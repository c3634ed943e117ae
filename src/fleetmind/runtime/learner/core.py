"""The learner's state machine, free of gRPC: sessions, batches, updates, versions.

The servicer (:mod:`fleetmind.rpc.learner_service`) only converts messages and
calls these methods; everything here runs on the asyncio loop except the update
itself, which runs in a worker thread so the server keeps answering::

    session = core.register(actor_id, env_id, num_envs)
    core.touch(session_id, incarnation, secret)   # every later call: its own session only
    core.accept(chunks)                     # sync: one per live actor per version
    batch = await core.next_batch()         # sync: all live actors (or timeout); async: queue
    await core.train_on(batch)              # update, version += 1, publish weights once

Each chunk is checked against its own data before it is taken (:mod:`.checks`); an
update whose losses or weights are not finite is rolled back (:mod:`.guard`): its
batch is dropped and the last good weights are published as the next version.

In ``sync`` mode a chunk of an older version is dropped (on-policy). In ``async``
mode chunks queue (bounded) and each batch's policy lag is measured; with
``max_policy_lag`` a chunk more than that many versions old is dropped.
Normaliser statistics of every accepted chunk merge into the global ones (Chan).

A session answers only calls that carry its secret (:class:`Session`); registering
with a live session's actor id opens a second session and leaves the first alone.

With a :class:`fleetmind.runtime.learner.collective.LearnerGroup` (several learners), every
update is shared: the learners exchange their step counts, finished episodes and
normaliser deltas (merged rank by rank, so all hold identical statistics), then
update with gradients averaged across the group. A learner without actors takes
part with an empty batch after ``sync_timeout_s``, so the others never hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from typing import Any

import numpy as np

from fleetmind.core.batch import Trajectory
from fleetmind.core.episodes import AgentReturns, EpisodeStats
from fleetmind.core.errors import (
    InvalidInputError,
    OverloadedError,
    PreconditionError,
    echo,
)
from fleetmind.core.exchange import STAGES, Chunk, Weights
from fleetmind.core.learning import TeamLearner
from fleetmind.core.normalizer import RunningMeanStd
from fleetmind.runtime.chunk_format import ChunkFormat
from fleetmind.runtime.dist_config import DistConfig
from fleetmind.runtime.learner.checks import ChunkChecks
from fleetmind.runtime.learner.collective import LearnerGroup
from fleetmind.runtime.learner.guard import UpdateGuard
from fleetmind.runtime.learner.session import Batch, Session, SessionTable
from fleetmind.runtime.learner.shared_update import train_shared
from fleetmind.runtime.learner.weight_store import WeightStore
from fleetmind.runtime.state import RunData

log = logging.getLogger("fleetmind.learner")


class LearnerCore:
    """Owns the learner, the sessions and the data waiting to be learned from."""

    def __init__(
        self,
        learner: TeamLearner,
        module: Any,
        dist: DistConfig,
        env_id: str,
        chunks: ChunkFormat,
        store: WeightStore | None,
        scaled_rewards: bool = False,
    ) -> None:
        self.learner = learner
        self.module = module
        self.dist = dist
        self.env_id = env_id
        self.chunks = chunks
        """How this run's chunks are decoded and their statistics split (agent or team)."""
        self.rollout_steps = chunks.rollout_steps
        self.parts = chunks.parts
        """Each agent's observation statistics, then the global state's (None: not kept)."""
        self.agent_returns = AgentReturns(chunks.agents if chunks.team else ())
        """A team's per-agent returns of the latest finished episodes (none: one agent)."""
        self.store = store
        """Where versions are published for actors in other processes (None: the actors
        step this learner's own networks, in this process)."""
        self.checks = ChunkChecks(chunks, scaled_rewards)
        """What is verified of each chunk before it is taken."""
        self.guard = UpdateGuard(learner, module)
        """Rolls back updates that diverge."""
        self.incarnation = secrets.randbits(62) + 1
        """Differs on every start: data from an earlier incarnation is refused."""
        self.stats = EpisodeStats()
        self.env_steps = 0
        """Env steps trained on (stale chunks do not count)."""
        self.dropped_chunks = 0
        self.done = False
        self._pending: dict[str, Chunk] = {}
        self._taken_version = -1
        """Sync: the version whose batch was last taken for an update."""
        self._pending_since: float | None = None
        self._queue: deque[Chunk] = deque()
        self._changed = asyncio.Event()
        self.sessions = SessionTable(self.incarnation, self._changed.set)
        self._version_changed = asyncio.Event()
        self.timings = {"learn": 0.0, "wait": 0.0, "exchange": 0.0}
        self.stage_totals = dict.fromkeys(STAGES, 0.0)
        """Actor seconds per stage, summed over every chunk received."""
        self.lag_history: deque[int] = deque(maxlen=1000)
        self.group: LearnerGroup | None = None
        """The other learners of a shared run, if any."""
        self.group_stop = False
        """A learner of the group was asked to stop: every learner stops now."""
        self._idle_since: float | None = time.monotonic()

    @property
    def version(self) -> int:
        """Current policy version."""
        return int(self.learner.version)

    def publish(self) -> Weights | None:
        """Take the current version (once) for every actor (None: nothing to publish)."""
        if self.store is None:
            return None
        stats = self.chunks.join()
        self.checks.published(self.version, stats)
        return self.store.publish(self.version, self.module, stats)

    def run_data(self) -> RunData:
        """What a checkpoint records of the data this learner gathered."""
        return RunData(
            env_steps=self.env_steps,
            stats=self.stats,
            agents=self.chunks.agents,
            obs_stats=self.parts[:-1],
            state_stats=self.parts[-1],
            agent_returns=self.agent_returns,
        )

    # -- sessions ---------------------------------------------------------------

    def register(self, actor_id: str, env_id: str, num_envs: int) -> Session:
        """A new session, whoever asks: a restarted actor gets a fresh one, and a live
        session with the same ``actor_id`` is left alone (it ends when it falls silent)."""
        if env_id and env_id != self.env_id:
            raise PreconditionError(
                f"actor {echo(actor_id)} runs {echo(env_id)} but this learner trains "
                f"{self.env_id!r}"
            )
        if num_envs <= 0:
            raise InvalidInputError(f"num_envs={num_envs} must be positive")
        session = Session.open(actor_id, num_envs, self.sessions)
        self.sessions[session.session_id] = session
        log.info("actor %s registered (session %s)", echo(actor_id, bare=True), session.session_id)
        self._changed.set()
        return session

    def touch(self, session_id: str, incarnation: int, secret: str) -> Session:
        """The live session of a call (:meth:`SessionTable.touch`)."""
        return self.sessions.touch(session_id, incarnation, secret)

    def end(self, session_id: str, secret: str) -> None:
        """Training is done and the session's actor was told so (:meth:`SessionTable.end`)."""
        self.sessions.end(session_id, secret)

    def reap(self) -> None:
        """Drop sessions silent for longer than ``actor_timeout_s``."""
        self.sessions.reap(self.dist.actor_timeout_s)

    # -- data -------------------------------------------------------------------

    def accept(self, session: Session, chunk: Chunk) -> bool:
        """Take a decoded chunk once it agrees with its own data; False when it is stale
        and dropped. InvalidInputError names what disagrees."""
        verdict = self.checks.verify(session, chunk)
        now = time.monotonic()
        if session.first_chunk_at is None:
            session.first_chunk_at = now
        session.env_steps += chunk.env_steps
        for stage in STAGES:
            session.times[stage] += chunk.times.get(stage, 0.0)
            self.stage_totals[stage] += chunk.times.get(stage, 0.0)
        lag = self.version - chunk.policy_version
        if lag < 0:
            raise InvalidInputError(
                f"policy_version={chunk.policy_version} is newer than the learner's {self.version}"
            )
        if self.dist.mode == "sync":
            # A chunk of a version whose batch was already taken (its update is running)
            # is as stale as an older one: the update cannot use it, the next must not.
            taken = chunk.policy_version <= self._taken_version
            verdict.commit(session, chunk)
            if lag != 0 or taken or session.session_id in self._pending or not verdict.base_known:
                self.dropped_chunks += 1
                return False
            self._pending[session.session_id] = chunk
            if self._pending_since is None:
                self._pending_since = now
        else:
            if len(self._queue) >= self.dist.queue_chunks:
                raise OverloadedError(
                    f"learner queue holds {len(self._queue)} chunks; slow down and retry"
                )
            verdict.commit(session, chunk)
            if not verdict.base_known:  # older than every version whose statistics are kept
                self.dropped_chunks += 1
                return False
            self._queue.append(chunk)
        self._changed.set()
        return True

    @property
    def queue_depth(self) -> int:
        """Chunks waiting for an update."""
        return len(self._pending) + len(self._queue)

    async def next_batch(self, stop: asyncio.Event) -> Batch | None:
        """Wait for the next batch to learn from (None when ``stop`` is set first)."""
        t0 = time.monotonic()
        while not stop.is_set() or self.group is not None:
            self.reap()
            if self.group is not None and self._nothing_to_wait_for(stop):
                return Batch([], [])  # the others must not wait for this learner
            batch = self.take_batch()
            if batch is not None:
                self.timings["wait"] += time.monotonic() - t0
                return batch
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=0.1)
        return None

    def _nothing_to_wait_for(self, stop: asyncio.Event) -> bool:
        """Group mode: stopping, or without actors for ``sync_timeout_s`` (then at once)."""
        if stop.is_set():
            return True
        now = time.monotonic()
        if self.sessions or self._pending:
            self._idle_since = None
            return False
        if self._idle_since is None:
            self._idle_since = now
        return now - self._idle_since >= self.dist.sync_timeout_s

    def take_batch(self) -> Batch | None:
        """The next batch if one is ready (sync: every live actor's chunk, or the wait
        for slow ones has passed; async: queued chunks), else None."""
        return self._take_sync() if self.dist.mode == "sync" else self._take_async()

    def _take_sync(self) -> Batch | None:
        if not self._pending:
            return None
        live = set(self.sessions)
        waited = time.monotonic() - (self._pending_since or time.monotonic())
        if not live.issubset(self._pending) and waited < self.dist.sync_timeout_s:
            return None
        if waited >= self.dist.sync_timeout_s and not live.issubset(self._pending):
            missing = len(live - set(self._pending))
            log.warning("sync update %d without %d slow actors", self.version, missing)
        chunks = list(self._pending.values())
        self._pending.clear()
        self._pending_since = None
        self._taken_version = self.version
        return Batch(chunks, [0] * len(chunks))

    def _take_async(self) -> Batch | None:
        chunks: list[Chunk] = []
        lags: list[int] = []
        limit = max(1, len(self.sessions))
        while self._queue and len(chunks) < limit:
            chunk = self._queue.popleft()
            lag = self.version - chunk.policy_version
            if self.dist.max_policy_lag is not None and lag > self.dist.max_policy_lag:
                self.dropped_chunks += 1
                continue
            chunks.append(chunk)
            lags.append(lag)
        return Batch(chunks, lags) if chunks else None

    async def train_on(self, batch: Batch, stop: bool = False) -> dict[str, float]:
        """Merge statistics, update (in a worker thread), publish the new version.

        ``stop``: this learner was asked to stop (tells the group, if any).
        """
        if self.group is not None:
            return await train_shared(self, batch, self.group, stop)
        trajectories = self.chunks.per_agent(batch.chunks)
        t0 = time.monotonic()
        metrics = await asyncio.to_thread(self.guard.update, trajectories, self._trusted(batch))
        culprits = None if metrics is not None else await asyncio.to_thread(self._culprits, batch)
        self._fold(batch, culprits)
        await asyncio.to_thread(self.publish)
        return self._learned(metrics, batch, time.monotonic() - t0)

    def train_now(self, batch: Batch) -> dict[str, float]:
        """:meth:`train_on` in the caller's thread (a learner with in-process actors)."""
        trajectories = self.chunks.per_agent(batch.chunks)
        t0 = time.monotonic()
        metrics = self.guard.update(trajectories, self._trusted(batch))
        self._fold(batch, None if metrics is not None else self._culprits(batch))
        self.publish()
        return self._learned(metrics, batch, time.monotonic() - t0)

    def _trusted(self, batch: Batch) -> bool:
        """Whether every chunk of ``batch`` comes from an actor in this process."""
        sessions = [self.sessions.get(c.session_id) for c in batch.chunks]
        return bool(sessions) and all(s is not None and s.trusted for s in sessions)

    def _fold(self, batch: Batch, culprits: set[str] | None) -> None:
        """Fold a batch's statistics and episodes in, unless its update was rolled back
        (``culprits``: the sessions whose chunks made it diverge)."""
        if culprits is not None:
            log.error("update rolled back (%s); its batch is dropped", self.guard.reason)
            self._distrust(culprits)
            return
        for chunk in batch.chunks:
            self.merge_stats(chunk.obs_stats)
            for episode in chunk.episodes:
                self.stats.add(episode.team_return, episode.length)
                if self.chunks.team:
                    self.agent_returns.add(episode.agent_returns)
        self.env_steps += sum(c.env_steps for c in batch.chunks)

    def _culprits(self, batch: Batch) -> set[str]:
        """Sessions of the chunks whose update alone diverges (all, if none does)."""
        chunks = batch.chunks
        if len(chunks) > 1:
            chunks = [c for c in chunks if self.guard.diverges(self.chunks.per_agent([c]))]
        return {c.session_id for c in chunks or batch.chunks}

    def _distrust(self, senders: set[str]) -> None:
        """Episodes that include a culprit chunk's rewards are not counted: neither those
        in progress in its session nor those of its chunks still waiting."""
        for session_id in senders:
            session = self.sessions.get(session_id)
            if session is not None and session.ledger is not None:
                session.ledger.whole[:] = False
        for chunk in [*self._queue, *self._pending.values()]:
            if chunk.session_id in senders:
                chunk.episodes = []

    def _learned(
        self, metrics: dict[str, float] | None, batch: Batch, seconds: float
    ) -> dict[str, float]:
        self.timings["learn"] += seconds
        return self.finish_update({"rolled_back": 1.0} if metrics is None else metrics, batch)

    def merge_stats(self, stats: RunningMeanStd | None) -> None:
        """Fold a chunk's (or a learner's) statistics delta into every part."""
        if stats is None:
            return
        for part, delta in zip(self.parts, self.chunks.split(stats), strict=True):
            if part is not None and delta is not None:
                part.merge(delta)

    def finish_update(self, metrics: dict[str, float], batch: Batch) -> dict[str, float]:
        self.lag_history.extend(batch.lags)
        if batch.lags:
            metrics["policy_lag_mean"] = float(np.mean(batch.lags))
            metrics["policy_lag_max"] = float(max(batch.lags))
        metrics["batch_chunks"] = float(len(batch.chunks))
        self._version_changed.set()
        self._version_changed = asyncio.Event()
        return metrics

    def update_shared(self, trajectories: list[Trajectory]) -> dict[str, float]:
        """A shared update (not rolled back: the group stops together on divergence)."""
        metrics = self.learner.update(trajectories)
        self.publish()
        return metrics

    async def wait_for_version(self, have: int, wait_s: float) -> Weights | None:
        """The latest weights if newer than ``have``; waits up to ``wait_s`` for them."""
        deadline = time.monotonic() + max(0.0, wait_s)
        while True:
            latest = None if self.store is None else self.store.latest()
            if latest is not None and latest.version > have:
                return latest
            left = deadline - time.monotonic()
            if left <= 0 or self.done:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._version_changed.wait(), timeout=min(left, 0.5))

    def finish(self) -> None:
        """Mark training done: actors learn it from their next call."""
        self.done = True
        self._version_changed.set()
