"""An actor process: vectorised environments, a CPU copy of the policy, a learner client.

::

    register -> fetch weights of the current version
    loop:
        trajectory = collect T steps of E envs           # "env" + "inference"
        sync: send the chunk up the session's Exchange stream and read the next
              version from it                 # "wait" until its first byte, then "rpc"
        async: hand the chunk to the sender thread   # "rpc": only while its queue is full
               load the version the sender thread fetched after a push announced it
                                          # "rpc" (the fetch itself overlaps, as "push")
    until the learner says done

Sync mode waits for the next version after every chunk, so nothing could overlap a
push: one long-lived bidirectional stream carries the chunk and brings the weights
back, one message each way, instead of a push call and a weights call per version
(each new call costs Python gRPC about a millisecond). The stream's deadline is
``EXCHANGE_LIFETIME_S``; the actor opens a new one after ``EXCHANGE_RENEW_S``. While
the learner updates it sends an empty message every second; the heartbeat thread
cancels a stream that stays silent for ``EXCHANGE_IDLE_S`` while an answer is due
(a cut network), which the loop handles as an unreachable learner.

In async mode chunks travel in a sender thread
(:class:`~fleetmind.runtime.actor.push_pipeline.PushPipeline`, ``push_queue`` chunks may
wait), so the actor steps on while they do; a push that fails raises its error in the
loop, which handles it as below.

What the actor steps is an :class:`~fleetmind.runtime.actor.source.ExperienceSource`
chosen by the learner's algorithm (:mod:`fleetmind.runtime.actor.source`).

The learner may vanish (restart, network cut): the actor retries with exponential
backoff and full jitter, forever unless ``give_up_after_s`` is set. When the learner
answers FAILED_PRECONDITION (it restarted and no longer knows the session), the
actor registers again, discards what it collected for the old incarnation and
rebuilds its environments: a session's episodes start in it, so the learner can
check each one against the rewards it received. Chunks carry their index in the
session (``seq``), so the learner notices one that was lost. Every call of a
session carries the secret its registration returned; PERMISSION_DENIED (a wrong
secret, which only a version mismatch explains) stops the actor.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fleetmind.core.errors import OverloadedError, PreconditionError, UnavailableError
from fleetmind.core.exchange import (
    STAGES,
    Chunk,
    ExchangeStream,
    LearnerClient,
    PushReply,
    SessionInfo,
    Weights,
)
from fleetmind.nn.threads import limit_threads
from fleetmind.runtime.actor.push_pipeline import PushPipeline
from fleetmind.runtime.actor.source import ActorSource, ExperienceSource, TimedPolicy
from fleetmind.runtime.dist_config import ActorConfig

__all__ = [
    "ActorSource",
    "ActorWorker",
    "Backoff",
    "ExperienceSource",
    "TimedPolicy",
    "run_actor",
    "run_actor_from_config",
]

HEARTBEAT_JOIN_S = 15.0
"""Longest an exiting actor waits for a heartbeat or push call in flight."""

log = logging.getLogger("fleetmind.actor")

SYNC_WAIT_S = 10.0
"""Long-poll length of the first weights fetch after registering."""
EXCHANGE_RENEW_S = 120.0
"""Age at which an actor replaces its Exchange stream (between two chunks)."""
EXCHANGE_IDLE_S = 10.0
"""Silence on an Exchange stream awaiting an answer after which it counts as lost."""


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

    def __init__(
        self,
        config: ActorConfig,
        client: LearnerClient,
        *,
        own_process: bool = True,
        source: Callable[[SessionInfo, int], ExperienceSource] = ActorSource,
    ) -> None:
        config.validate()
        self._make_source = source
        """Builds what the actor steps for a session (default: its own copy of the run)."""
        if own_process:  # an actor beside its learner leaves the threads to the learner
            limit_threads(1)
        self.config = config
        self.client = client
        self.backoff = Backoff(config.backoff_initial_s, config.backoff_max_s)
        self.stop = threading.Event()
        self.session: SessionInfo | None = None
        self.version = -1
        self.times = dict.fromkeys(STAGES, 0.0)
        self.source: ExperienceSource | None = None
        self.pushes: PushPipeline | None = None
        """The async mode's sender thread (none in sync mode, or with ``push_queue`` 0)."""
        self.exchange: ExchangeStream | None = None
        """The sync mode's stream to the learner, while one is open."""
        self._pushed_inline = 0
        self._push_s_reported = 0.0
        self._seq = 0
        """Index of the next chunk in the current session."""

    @property
    def chunks_sent(self) -> int:
        """Chunks the learner answered."""
        return self._pushed_inline + (self.pushes.sent if self.pushes is not None else 0)

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
            self._close_exchange()
            # A call in flight while the channel closes and the interpreter exits can
            # abort the process inside gRPC: let pushes and heartbeats finish first.
            if self.pushes is not None:
                self.pushes.close(HEARTBEAT_JOIN_S)
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
            if not self.stop.is_set():  # else: a heartbeat said done, which ends the session
                log.warning("learner refused the session (%s); registering again", exc)
            self.session = None
        except (UnavailableError, OverloadedError) as exc:  # unreachable, or a full queue
            wait = self.backoff.wait_s()
            since = self.backoff.since or time.monotonic()
            limit = self.config.give_up_after_s
            if limit is not None and time.monotonic() - since > limit:
                log.error("learner unreachable for %.0fs; giving up: %s", limit, exc)
                return False
            what = "busy" if isinstance(exc, OverloadedError) else "unreachable"
            log.warning("learner %s (%s); retrying in %.2fs", what, exc, wait)
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
        chunk = source.chunk(session, self._take_times())
        chunk.seq, self._seq = self._seq, self._seq + 1
        if session.mode == "sync":
            self._exchange_round(chunk, source)
            return
        reply = self._push(chunk)
        if reply is not None and reply.done:
            self.stop.set()
            return
        if self.pushes is not None:
            self._load_prefetched()
        elif reply is not None and reply.version > self.version:
            self._fetch(0.0)

    def _take_times(self) -> dict[str, float]:
        """Seconds per stage since the previous chunk (sent with the next one)."""
        if self.pushes is not None:
            push_s = self.pushes.push_s
            self.times["push"] += push_s - self._push_s_reported
            self._push_s_reported = push_s
        times, self.times = self.times, dict.fromkeys(STAGES, 0.0)
        return times

    def _push(self, msg: Chunk) -> PushReply | None:
        """Queue the chunk (or push it here); the latest answer. Blocked time is "rpc"."""
        t = time.monotonic()
        try:
            if self.pushes is None:
                reply = self.client.push([msg])
                self._pushed_inline += 1
                self.times["push"] += time.monotonic() - t
                return reply
            self.pushes.submit(msg)
            return self.pushes.check()
        finally:
            self.times["rpc"] += time.monotonic() - t

    def _exchange_round(self, chunk: Chunk, source: ExperienceSource) -> None:
        """Sync: send the chunk and load the version that answers it (or learn: done)."""
        if self.exchange is not None and self.exchange.age_s > EXCHANGE_RENEW_S:
            self._close_exchange()
        if self.exchange is None:
            self.exchange = self.client.exchange()
        t = time.monotonic()
        try:
            answer = self.exchange.round(chunk)
        except Exception:
            self._close_exchange()  # a failed stream is not reused
            raise
        self._pushed_inline += 1
        self.times["wait"] += answer.first_byte_at - t
        if answer.reply.done or answer.weights is None:
            self.stop.set()
            return
        self._load(answer.weights, source)
        self.times["rpc"] += time.monotonic() - answer.first_byte_at

    def _close_exchange(self) -> None:
        stream, self.exchange = self.exchange, None
        if stream is not None:
            stream.close()

    def _load_prefetched(self) -> None:
        """Async: load the version the sender thread fetched, if newer."""
        if self.pushes is None or self.source is None:
            return
        t = time.monotonic()
        weights = self.pushes.take_weights(self.version)
        if weights is not None:
            self._load(weights, self.source)
        self.times["rpc"] += time.monotonic() - t

    def _register(self) -> None:
        cfg = self.config
        self._close_exchange()  # a stream of the old session is not reused
        if self.pushes is not None:  # chunks of the old session are not sent
            self.pushes.discard(HEARTBEAT_JOIN_S)
        t = time.monotonic()
        session = self.client.register(cfg.actor_id, cfg.env_id, cfg.envs, os.getpid())
        self.times["rpc"] += time.monotonic() - t
        self.session = session  # heartbeats start now, while the environments are built
        if session.mode == "async" and self.pushes is None and cfg.push_queue:
            self.pushes = PushPipeline(self.client, cfg.push_queue)
        if self.pushes is not None:
            self.pushes.prefetch = session.mode == "async"
            self.pushes.session = session
        # A new session starts fresh episodes, so the learner sees each one whole.
        if self.source is not None:
            self.source.close()
        self.source = self._make_source(session, self.config.envs)
        self._seq = 0
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
        t = time.monotonic()
        weights, first_at = self.client.weights(session, self.version, wait_s)
        # Until the first byte: the wait for a version (a long-poll), or the call itself.
        self.times["wait" if wait_s > 0 else "rpc"] += first_at - t
        if weights is None:
            return False
        self._load(weights, self.source)
        self.times["rpc"] += time.monotonic() - first_at
        return True

    def _load(self, weights: Weights, source: ExperienceSource) -> None:
        """Make a received version the policy's (and its statistics the normaliser's)."""
        source.load(weights)
        self.version = weights.version
        if self.pushes is not None:
            self.pushes.loaded(self.version)

    def _heartbeats(self) -> None:
        while not self.stop.wait(self.config.heartbeat_s):
            stream = self.exchange
            if stream is not None and stream.cancel_if_idle(EXCHANGE_IDLE_S):
                log.warning("no answer on the exchange stream for %.0fs; reconnecting",
                            EXCHANGE_IDLE_S)  # fmt: skip
            session = self.session
            if session is None:
                continue
            try:
                reply = self.client.heartbeat(session)
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


def run_actor_from_config(config: ActorConfig) -> int:
    """Connect to ``config.learner`` (TLS and token as configured) and run one actor."""
    from fleetmind.rpc.channel import ChannelConfig
    from fleetmind.rpc.learner_client import GrpcLearnerClient
    from fleetmind.runtime.dist_config import read_token

    config.validate()
    channel = ChannelConfig(
        tls_ca=config.tls_ca,
        tls_cert=config.tls_cert,
        tls_key=config.tls_key,
        tls_server_name=config.tls_server_name,
        max_reconnect_backoff_s=config.backoff_max_s,  # reconnect soon after an outage
    )
    client = GrpcLearnerClient(config.learner, channel, read_token(config), config.rpc_timeout_s)
    return run_actor(config, client)
