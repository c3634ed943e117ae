"""The learner sums episodes from the chunks' own rewards, across chunk boundaries."""

from __future__ import annotations

import numpy as np
import pytest
from tests.integration.learner_harness import cartpole_chunk

from fleetmind.core.errors import InvalidInputError
from fleetmind.core.exchange import Chunk, Episode
from fleetmind.runtime.learner.ledger import EpisodeLedger, tally


def chunk(seq: int, end: tuple[int, int] | None = None, *episodes: Episode) -> Chunk:
    """A [4 x 2] CartPole chunk (reward 1 a step); copy ``end[1]`` ends at step ``end[0]``."""
    out = cartpole_chunk(episodes=episodes)
    out.seq = seq
    if end is not None:
        out.trajectories[0].terminated[end] = True
    return out


def test_an_episode_begun_in_an_earlier_chunk_is_summed_whole() -> None:
    ledger = EpisodeLedger.fresh(envs=2, agents=1)
    ledger, counted = tally(ledger, chunk(0), scaled=False)
    assert counted == []
    ledger, counted = tally(ledger, chunk(1, (2, 0), Episode(7.0, 7, (7.0,))), scaled=False)
    assert counted == [Episode(7.0, 7, (7.0,))]
    assert ledger.lengths.tolist() == [1, 8]  # copy 0 started again after its end


def test_after_a_lost_chunk_the_episode_in_progress_is_not_counted() -> None:
    ledger = EpisodeLedger.fresh(envs=2, agents=1)
    ledger, _ = tally(ledger, chunk(0), scaled=False)
    # Chunk 1 never arrived: the actor's episode is 11 steps long, the learner saw 3 of
    # them since; it cannot check the return, so the episode is left out.
    ledger, counted = tally(ledger, chunk(2, (2, 0), Episode(11.0, 11, (11.0,))), scaled=False)
    assert counted == []
    with pytest.raises(InvalidInputError, match=r"episode_lengths\[0\]=2 but the chunk alone"):
        tally(ledger, chunk(3, (2, 1), Episode(2.0, 2, (2.0,))), scaled=False)
    ledger, counted = tally(ledger, chunk(3, (3, 0), Episode(5.0, 5, (5.0,))), scaled=False)
    assert counted == [Episode(5.0, 5, (5.0,))]  # began after the gap: seen whole


def test_a_run_that_scales_rewards_sums_the_raw_ones() -> None:
    ledger = EpisodeLedger.fresh(envs=2, agents=1)
    scaled = chunk(0, (3, 0), Episode(40.0, 4, (40.0,)))
    with pytest.raises(InvalidInputError, match="raw_rewards missing"):
        tally(ledger, scaled, scaled=True)
    scaled.raw_rewards = np.full((4, 2, 1), 10.0, np.float32)  # rewards travel as 1.0
    _, counted = tally(ledger, scaled, scaled=True)
    assert counted == [Episode(40.0, 4, (40.0,))]
