"""The learner core's chunk formats: a single agent's and a team's, side by side."""

from __future__ import annotations

import numpy as np
import pytest

from fleetmind.algos.registry import get_algorithm
from fleetmind.core.normalizer import RunningMeanStd
from fleetmind.runtime.learner.chunk_format import TeamChunkFormat, chunk_format
from fleetmind.runtime.parts import RunParts, build_parts


def _parts(env_id: str, algo: str) -> RunParts:
    spec = get_algorithm(algo)
    parts = build_parts(env_id, spec, spec.config_cls(), envs=2, seed=0, normalize_obs=True)
    return parts


@pytest.mark.parametrize(
    ("env_id", "algo"), [("CartPole-v1", "ppo"), ("mpe2/simple_spread_v3", "mappo")]
)
def test_an_empty_batch_has_the_shapes_of_a_collected_one(env_id: str, algo: str) -> None:
    parts = _parts(env_id, algo)
    try:
        chunks = chunk_format(parts, 8)
        collected = parts.collector(8, reward_gamma=None, seed=0).collect(
            parts.learner.rollout_policy()
        )
        empty = chunks.empty()
        assert len(empty) == len(collected) == len(parts.spec.agents)
        for got, want in zip(empty, collected, strict=True):
            assert got.obs.shape == (8, 0, *want.obs.shape[2:])
            assert got.actions.shape[2:] == want.actions.shape[2:]
            assert got.actions.dtype == want.actions.dtype
    finally:
        parts.env.close()


def test_team_statistics_split_into_each_agent_and_the_state_and_join_back() -> None:
    parts = _parts("mpe2/simple_spread_v3", "mappo")
    parts.env.close()
    chunks = chunk_format(parts, 8)
    assert isinstance(chunks, TeamChunkFormat)
    rng = np.random.default_rng(0)
    for part in chunks.parts:
        if part is not None:
            part.update(rng.normal(size=(5, *part.shape)))
    joined = chunks.join()
    assert joined is not None
    split = chunks.split(joined)
    assert len(split) == len(chunks.parts)
    for part, piece in zip(chunks.parts, split, strict=True):
        if part is None:
            assert piece is None
            continue
        assert isinstance(piece, RunningMeanStd)
        np.testing.assert_allclose(piece.mean, part.mean)
        np.testing.assert_allclose(piece.var, part.var)


def test_a_single_agent_keeps_its_statistics_shape_and_no_agent_returns() -> None:
    parts = _parts("CartPole-v1", "ppo")
    parts.env.close()
    chunks = chunk_format(parts, 8)
    assert not chunks.team
    assert chunks.join() is chunks.parts[0]
    stats = RunningMeanStd((4,))
    assert chunks.split(stats) == [stats, None]
