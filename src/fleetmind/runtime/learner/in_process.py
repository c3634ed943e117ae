"""Local training: the distributed system in one process.

The actor is the one :class:`~fleetmind.runtime.actor.worker.ActorWorker`, the learner
the one :class:`~fleetmind.runtime.learner.run.LearnerRun`; an in-process learner
client joins them where gRPC would. Because both live in one process the actor steps
the learner's own networks and statistics (:class:`SharedSource`), so a version
carries no tensors and no statistics delta travels, and the client runs the update
when a chunk arrives, in the caller's thread::

    run = LearnerRun(setup, DistConfig(), progress, local_envs=8)
    result = train_in_process(run, envs=8)
    # worker: register -> collect -> client.exchange().round(chunk) -> collect ...
    # round:  endpoint.take(chunk) -> core.train_now(batch) -> run.learned(metrics)

Only the transport differs from actors in other processes: sessions, chunks, batches,
statistics, reports, checkpoints and the stop rules are the same code.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from fleetmind.core.episodes import EpisodeStats
from fleetmind.core.exchange import (
    Chunk,
    ExchangeAnswer,
    PushReply,
    SessionInfo,
    Weights,
)
from fleetmind.runtime.actor.source import CollectingSource
from fleetmind.runtime.actor.worker import ActorWorker
from fleetmind.runtime.dist_config import ActorConfig
from fleetmind.runtime.learner.endpoint import CoreEndpoint
from fleetmind.runtime.learner.run import LearnerRun
from fleetmind.runtime.result import TrainResult
from fleetmind.runtime.state import RunData, restore_normalizers

log = logging.getLogger("fleetmind.train")

LOCAL_ACTOR = "local"
"""Name of the in-process actor."""


class SharedSource(CollectingSource):
    """What an in-process actor steps: the learner's own env copies, networks and
    statistics (nothing to copy, no delta to send)."""

    def __init__(self, run: LearnerRun, session: SessionInfo) -> None:
        super().__init__(
            run.parts,
            run.core.chunks,
            run.setup.algo_config,
            {"normalize_reward": run.setup.config.normalize_reward},
            int(session.rollout_steps),
            int(session.seed),
        )
        self.collector.env_steps = run.core.env_steps
        if run.setup.state is not None:  # the learner restored everything else
            restore_normalizers(run.setup.state, self.reward_data())

    def reward_data(self) -> RunData:
        """The collector's reward statistics as a checkpoint sees them."""
        return RunData(
            env_steps=0,
            stats=EpisodeStats(),
            agents=self.collector.agents,
            obs_stats=[None] * len(self.collector.agents),
            reward_stats=self.collector.reward_stats,
        )

    def load(self, weights: Weights) -> None:
        """Nothing to copy: the policy reads the learner's parameters."""

    def discard_delta(self) -> None:
        """Nothing unsent: the statistics are the learner's."""

    def close(self) -> None:
        """The run closes the environments."""


class InProcessExchange:
    """Sync mode in one process: each chunk is learned from before the call returns."""

    def __init__(self, client: InProcessLearnerClient) -> None:
        self.client = client
        self._opened = time.monotonic()

    def round(self, chunk: Chunk) -> ExchangeAnswer:
        """Take ``chunk``, update when the batch is complete, answer with the version."""
        client = self.client
        reply = client.push([chunk])
        weights = None if reply.done else client.version()
        return ExchangeAnswer(reply, weights, time.monotonic())

    def cancel_if_idle(self, idle_s: float) -> bool:
        """An in-process answer is never overdue."""
        return False

    @property
    def age_s(self) -> float:
        """Seconds since the stream opened."""
        return time.monotonic() - self._opened

    def close(self) -> None:
        """Nothing to release."""


class InProcessLearnerClient:
    """:class:`~fleetmind.core.exchange.LearnerClient` calling a learner in this process."""

    def __init__(self, run: LearnerRun, trusted: bool = True) -> None:
        self.run = run
        self.endpoint: CoreEndpoint = run.endpoint()
        self.trusted = trusted
        """The learner takes this actor's chunks as they are (they come from its own
        collector): no checks, and no copy of its state before each update."""

    def version(self) -> Weights:
        """The current version (no tensors: the actor shares the learner's networks)."""
        return Weights(self.run.core.version, {})

    def register(self, actor_id: str, env_id: str, num_envs: int, pid: int) -> SessionInfo:
        """Open a session; its chunks come from the learner's own collector, so the
        learner trusts them as they are."""
        info = self.endpoint.register(actor_id, env_id, num_envs, pid)
        self.run.core.sessions[info.session_id].trusted = self.trusted
        return info

    def heartbeat(self, session: SessionInfo) -> PushReply:
        """The learner's version and whether it is done (an in-process session never
        expires, so nothing is touched from the heartbeat thread)."""
        core = self.run.core
        return PushReply(core.version, core.done)

    def push(self, chunks: Iterable[Chunk]) -> PushReply:
        """Hand chunks to the learner; update when a batch is ready; stop when done."""
        run, core = self.run, self.run.core
        accepted = dropped = 0
        for chunk in chunks:
            if run.finished():
                core.finish()
            taken = self.endpoint.take(chunk)
            if taken is None:
                return PushReply(core.version, True, accepted, dropped)
            accepted += int(taken)
            dropped += int(not taken)
        batch = core.take_batch()
        if batch is not None:
            run.learned(core.train_now(batch))
        if run.finished():
            core.finish()
        return PushReply(core.version, core.done, accepted, dropped)

    def weights(
        self, session: SessionInfo, have_version: int, wait_s: float
    ) -> tuple[Weights | None, float]:
        """The current version when it is newer than ``have_version``."""
        newer = self.run.core.version > have_version
        return (self.version() if newer else None), time.monotonic()

    def exchange(self) -> InProcessExchange:
        """A sync-mode exchange."""
        return InProcessExchange(self)

    def close(self) -> None:
        """Nothing to release."""


@contextmanager
def stop_on_signals(stop: Callable[[str], None]) -> Iterator[None]:
    """Call ``stop(name)`` on SIGINT or SIGTERM while inside (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, _frame: FrameType | None) -> None:
        stop(signal.Signals(signum).name)

    signals = (signal.SIGINT, signal.SIGTERM)
    previous: list[Any] = [signal.signal(s, handle) for s in signals]
    try:
        yield
    finally:
        for s, handler in zip(signals, previous, strict=True):
            signal.signal(s, handler)


def train_in_process(run: LearnerRun, envs: int, *, trusted: bool = True) -> TrainResult:
    """Train ``run`` with one actor in this process; always checkpoint at the end.

    ``trusted=False`` has the learner check the actor's chunks and roll back updates
    that diverge, as it does for actors in other processes.
    """
    client = InProcessLearnerClient(run, trusted)
    actor = ActorConfig(
        learner="in-process", actor_id=LOCAL_ACTOR, env_id=run.setup.config.env_id, envs=envs
    )

    def source(session: SessionInfo, _envs: int) -> SharedSource:
        shared = SharedSource(run, session)
        run.run_data = lambda: _with_rewards(run, shared)
        return shared

    worker = ActorWorker(actor, client, own_process=False, source=source)
    run.open()
    try:
        with stop_on_signals(run.request_stop):
            worker.run()
        result = run.wrap_up()
    finally:
        run.close()
        run.parts.env.close()
    run.write_summary(result)
    return result


def _with_rewards(run: LearnerRun, source: SharedSource) -> RunData:
    data = run.core.run_data()
    data.reward_stats = source.collector.reward_stats
    return data
