"""Episodes a learner counts: summed by the learner from each chunk's own rewards.

An actor reports the episodes that ended in a chunk. The learner keeps, per session
and per environment copy, the return (per agent) and the length of the episode in
progress, adds each chunk's rewards and valid rows in step order, and compares every
reported episode with the one it summed; an episode may begin in an earlier chunk of
the session::

    ledger = EpisodeLedger.fresh(envs=E, agents=N)   # a session starts fresh episodes
    after, counted = tally(ledger, chunk, scaled)    # InvalidInputError on a mismatch
    session.ledger = after                           # once the chunk was taken

An episode ends at the step where every agent that acted is done (terminated or
truncated); its length counts the steps in which any agent acted. A run that scales
rewards sums the chunk's ``raw_rewards``. Only episodes the learner saw whole are
counted: after a lost chunk (a gap in ``seq``) the episodes then in progress are
checked for length only and left out of the statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fleetmind.core.errors import InvalidInputError
from fleetmind.core.exchange import Chunk, Episode

REL_TOL = 1e-5
"""Reported returns may differ from the learner's sums by this share of the summed
absolute rewards (the actor sums float64 rewards, the wire carries float32)."""
ABS_TOL = 1e-6
"""... plus this much."""


@dataclass
class EpisodeLedger:
    """The episodes in progress of one session's environment copies."""

    returns: np.ndarray
    """``[E, N]`` each agent's return so far."""
    magnitude: np.ndarray
    """``[E]`` sum of absolute rewards so far (the scale of the rounding tolerance)."""
    lengths: np.ndarray
    """``[E]`` steps so far."""
    whole: np.ndarray
    """``[E]`` the learner saw the episode in progress from its first step."""
    next_seq: int = 0
    """The chunk index expected next."""

    @classmethod
    def fresh(cls, envs: int, agents: int) -> EpisodeLedger:
        """A new session's ledger: every copy starts a fresh episode."""
        return cls(
            np.zeros((envs, agents)), np.zeros(envs), np.zeros(envs, np.int64), np.ones(envs, bool)
        )

    def copy(self) -> EpisodeLedger:
        """An independent copy."""
        return EpisodeLedger(
            self.returns.copy(),
            self.magnitude.copy(),
            self.lengths.copy(),
            self.whole.copy(),
            self.next_seq,
        )


@dataclass
class _Ended:
    returns: np.ndarray
    magnitude: float
    length: int
    whole: bool


def tally(ledger: EpisodeLedger, chunk: Chunk, scaled: bool) -> tuple[EpisodeLedger, list[Episode]]:
    """The ledger after ``chunk`` and the reported episodes to count (those seen whole).

    InvalidInputError naming the field when the chunk's report disagrees with its data.
    """
    after, ended = _advance(ledger, chunk, scaled)
    return after, _compare(chunk.episodes, ended)


def summed(
    ledger: EpisodeLedger, chunk: Chunk, scaled: bool
) -> tuple[EpisodeLedger, list[Episode]]:
    """The ledger after ``chunk`` and the episodes that end in it as the learner sums
    them (lengths of those begun before a lost chunk count from the gap)."""
    after, ended = _advance(ledger, chunk, scaled)
    return after, [
        Episode(float(e.returns.sum()), e.length, tuple(float(r) for r in e.returns)) for e in ended
    ]


def _advance(
    ledger: EpisodeLedger, chunk: Chunk, scaled: bool
) -> tuple[EpisodeLedger, list[_Ended]]:
    rewards, valid, done = _arrays(chunk, scaled)
    if rewards.shape[1:] != ledger.returns.shape:
        raise InvalidInputError(
            f"num_envs={rewards.shape[1]} but this session's earlier chunks held "
            f"{ledger.returns.shape[0]} environment copies; register again to change it"
        )
    if chunk.seq < ledger.next_seq:
        raise InvalidInputError(
            f"seq={chunk.seq} was already received; this session's next chunk is {ledger.next_seq}"
        )
    after = ledger.copy()
    if chunk.seq > ledger.next_seq:  # chunks were lost: count from here, and only a floor
        after.returns[:] = 0.0
        after.magnitude[:] = 0.0
        after.lengths[:] = 0
        after.whole[:] = False
    after.next_seq = chunk.seq + 1
    return after, _walk(after, rewards, valid, done)


def _arrays(chunk: Chunk, scaled: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rewards to sum, valid rows and done flags, each ``[T, E, N]``."""
    trajectories = chunk.trajectories
    valid = np.stack([t.valid for t in trajectories], -1)
    done = np.stack([t.terminated | t.truncated for t in trajectories], -1) & valid
    if scaled and chunk.raw_rewards is None:
        raise InvalidInputError(
            "raw_rewards missing: this run scales rewards, so each chunk carries its rewards "
            "before scaling (start the actor from the learner's fleetmind version)"
        )
    if not scaled and chunk.raw_rewards is not None:
        raise InvalidInputError("raw_rewards sent but this run does not scale rewards")
    if chunk.raw_rewards is not None:
        rewards = np.asarray(chunk.raw_rewards, np.float64)
    else:
        rewards = np.stack([t.rewards for t in trajectories], -1).astype(np.float64)
    return np.where(valid, rewards, 0.0), valid, done


def _walk(
    ledger: EpisodeLedger, rewards: np.ndarray, valid: np.ndarray, done: np.ndarray
) -> list[_Ended]:
    """Add every step to ``ledger`` (in place); the episodes that ended, in step order."""
    acted = np.any(valid, axis=2)
    ends = acted & np.all(done | ~valid, axis=2)
    ended: list[_Ended] = []
    for t in range(rewards.shape[0]):
        ledger.returns += rewards[t]
        ledger.magnitude += np.abs(rewards[t]).sum(axis=1)
        ledger.lengths += acted[t]
        for e in np.flatnonzero(ends[t]):
            ended.append(
                _Ended(
                    ledger.returns[e].copy(),
                    float(ledger.magnitude[e]),
                    int(ledger.lengths[e]),
                    bool(ledger.whole[e]),
                )
            )
            ledger.returns[e] = 0.0
            ledger.magnitude[e] = 0.0
            ledger.lengths[e] = 0
            ledger.whole[e] = True
    return ended


def _compare(reported: list[Episode], ended: list[_Ended]) -> list[Episode]:
    if len(reported) != len(ended):
        raise InvalidInputError(
            f"episode_returns holds {len(reported)} episodes but the chunk's done flags end "
            f"{len(ended)}; report each episode that ends in the chunk, once, in step order"
        )
    counted = []
    for k, (episode, summed) in enumerate(zip(reported, ended, strict=True)):
        if not summed.whole:  # began in a chunk that never arrived: only a floor holds
            if episode.length < summed.length:
                raise InvalidInputError(
                    f"episode_lengths[{k}]={episode.length} but the chunk alone holds "
                    f"{summed.length} steps of that episode"
                )
            continue
        if episode.length != summed.length:
            raise InvalidInputError(
                f"episode_lengths[{k}]={episode.length} but the chunk's valid rows give "
                f"{summed.length} steps"
            )
        tol = REL_TOL * summed.magnitude + ABS_TOL
        if not abs(episode.team_return - float(summed.returns.sum())) <= tol:
            raise InvalidInputError(
                f"episode_returns[{k}]={episode.team_return:.6g} but the chunk's rewards sum "
                f"to {float(summed.returns.sum()):.6g}"
            )
        agents = len(summed.returns)
        for i, (given, want) in enumerate(zip(episode.agent_returns, summed.returns, strict=True)):
            if not abs(given - float(want)) <= tol:
                raise InvalidInputError(
                    f"agent_episode_returns[{k * agents + i}]={given:.6g} but agent {i}'s "
                    f"rewards sum to {float(want):.6g}"
                )
        counted.append(episode)
    return counted
