"""What a learner verifies of a chunk before taking it: episodes and statistics.

The learner decides on what it can verify. Episode returns and lengths are summed
again from the chunk's rewards and flags (:mod:`fleetmind.runtime.learner.ledger`),
across the chunks of a session; the observation-statistics delta is checked against
the observations it came with, de-normalised with the statistics of the chunk's
policy version (:mod:`fleetmind.runtime.learner.obs_check`)::

    checks.published(version, stats)           # every version the actors may act with
    verdict = checks.verify(session, chunk)    # InvalidInputError naming the field
    ... the core takes or drops the chunk ...
    verdict.commit(session, chunk)             # the ledger moves on; episodes to count

Chunks of an actor in this process carry no statistics delta (they share the
learner's); their episodes are checked all the same.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from fleetmind.core.exchange import Chunk, Episode
from fleetmind.core.normalizer import RunningMeanStd
from fleetmind.runtime.chunk_format import ChunkFormat
from fleetmind.runtime.learner.ledger import EpisodeLedger, tally
from fleetmind.runtime.learner.obs_check import check_obs_stats
from fleetmind.runtime.learner.session import Session

KEEP_VERSIONS = 256
"""Versions whose statistics are kept to check chunks (an older chunk is dropped)."""


@dataclass
class Verdict:
    """A chunk that passed: the session's ledger after it, and the episodes to count."""

    ledger: EpisodeLedger | None
    """The session's episodes in progress once the chunk is taken (None: not followed,
    the session is trusted)."""
    episodes: list[Episode]
    """The reported episodes the learner saw whole (the ones statistics count)."""
    base_known: bool
    """The statistics of the chunk's version are still kept (else: drop it as stale)."""

    def commit(self, session: Session, chunk: Chunk) -> None:
        """The chunk was taken (trained on or dropped as stale): move the ledger on."""
        session.ledger = self.ledger
        chunk.episodes = self.episodes


class ChunkChecks:
    """Verifies chunks of one run against their own data."""

    def __init__(self, chunks: ChunkFormat, scaled_rewards: bool) -> None:
        self.chunks = chunks
        self.scaled_rewards = scaled_rewards
        """The run scales rewards: chunks carry raw ones to sum."""
        self._bases: OrderedDict[int, RunningMeanStd] = OrderedDict()

    def published(self, version: int, stats: RunningMeanStd | None) -> None:
        """Actors may act with ``version``, normalising with ``stats``."""
        if stats is None:
            return
        self._bases[version] = stats.copy()
        while len(self._bases) > KEEP_VERSIONS:
            self._bases.popitem(last=False)

    def verify(self, session: Session, chunk: Chunk) -> Verdict:
        """Check ``chunk`` of ``session``; InvalidInputError naming what disagrees."""
        if session.trusted:
            return Verdict(session.ledger, list(chunk.episodes), True)
        first = chunk.trajectories[0]
        ledger = session.ledger or EpisodeLedger.fresh(first.num_envs, len(chunk.trajectories))
        after, episodes = tally(ledger, chunk, self.scaled_rewards)
        known = True
        if chunk.obs_stats is not None:
            base = self._bases.get(chunk.policy_version)
            known = base is not None
            if base is not None:
                self._check_stats(chunk, chunk.obs_stats, base)
        return Verdict(after, episodes, known)

    def _check_stats(self, chunk: Chunk, delta: RunningMeanStd, base: RunningMeanStd) -> None:
        """The statistics of the parts whose observations the chunk carries."""
        first = chunk.trajectories[0]
        lead = (first.num_steps, first.num_envs)
        arrays: list[np.ndarray | None] = [*(t.obs for t in chunk.trajectories), chunk.state]
        columns: list[np.ndarray] = []
        parts: list[np.ndarray] = []
        start = 0
        for part, array in zip(self.chunks.parts, arrays, strict=True):
            if part is None:
                continue
            size = int(np.prod(part.shape))
            if array is not None:
                columns.append(np.arange(start, start + size))
                parts.append(array.reshape(*lead, size))
            start += size
        if not parts:
            return
        cols = np.concatenate(columns)
        check_obs_stats(_select(delta, cols), _select(base, cols), np.concatenate(parts, -1))


def _select(stats: RunningMeanStd, cols: np.ndarray) -> RunningMeanStd:
    mean, var = stats.mean.reshape(-1)[cols], stats.var.reshape(-1)[cols]
    return RunningMeanStd(mean.shape, mean, var, stats.count)
