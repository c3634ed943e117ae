"""The observation-statistics check passes honest actors' chunks and refuses deltas
that disagree with the observations sent."""

from __future__ import annotations

import numpy as np
import pytest

from fleetmind.algos.registry import get_algorithm
from fleetmind.core.errors import InvalidInputError
from fleetmind.core.normalizer import RunningMeanStd, concat_stats
from fleetmind.runtime.actor.tracking_stats import TrackingStats
from fleetmind.runtime.chunk_format import ChunkFormat
from fleetmind.runtime.learner.obs_check import check_obs_stats
from fleetmind.runtime.parts import build_parts


def honest_chunks(  # type: ignore[no-untyped-def]
    env_id: str, steps: int, envs: int, chunks: int, seed: int, per_version: int = 1
):
    """(delta, base, normalised) of ``chunks`` chunks of an actor from a fresh learner.

    The learner publishes a version (its statistics merged with the deltas so far)
    after every ``per_version`` chunks: 1 is a sync actor, more an async actor that
    sends several chunks before a new version reaches it.
    """
    spec = get_algorithm("ppo")
    parts = build_parts(
        env_id, spec, spec.config_cls(), envs=envs, seed=seed, normalize_obs=True,
        stats=TrackingStats,
    )  # fmt: skip
    try:
        form = ChunkFormat(parts, steps)
        stats = [p for p in form.parts if isinstance(p, TrackingStats)]
        learner = RunningMeanStd(stats[0].shape)
        collector = parts.collector(steps, reward_gamma=None, seed=seed)
        policy = parts.learner.rollout_policy()
        for part in stats:  # the actor registered: it drops its delta, adopts the learner's
            part.take_delta()
            part.adopt(learner)
        base = learner.copy()
        for sent in range(1, chunks + 1):
            trajectories = collector.collect(policy, 0)
            delta = concat_stats([p.take_delta() for p in stats])
            assert delta is not None
            yield delta, base, trajectories[0].obs.reshape(steps, envs, -1)
            learner.merge(delta)
            if sent % per_version == 0:
                base = learner.copy()
                for part in stats:
                    part.adopt(base)
    finally:
        parts.env.close()


@pytest.mark.parametrize(
    ("env_id", "steps", "envs"),
    [
        ("CartPole-v1", 2, 1),
        ("CartPole-v1", 4, 2),
        ("CartPole-v1", 64, 4),
        ("Pendulum-v1", 4, 2),
        ("MountainCar-v0", 4, 1),
        ("Acrobot-v1", 8, 2),
    ],
)
def test_honest_chunks_pass(env_id: str, steps: int, envs: int) -> None:
    for delta, base, normalised in honest_chunks(env_id, steps, envs, chunks=150, seed=3):
        check_obs_stats(delta, base, normalised)


@pytest.mark.parametrize(("steps", "per_version"), [(4, 8), (8, 4), (16, 3)])
def test_several_chunks_under_one_version_pass(steps: int, per_version: int) -> None:
    # One env whose observation drifts: an actor that normalised a chunk with the rows
    # of its earlier chunks of the same version (which the version's statistics lack)
    # sent values the learner de-normalised to the wrong place.
    chunks = honest_chunks(
        "fleetmind-test/LongCountdown-v0", steps, 1, chunks=60, seed=3, per_version=per_version
    )
    for delta, base, normalised in chunks:
        check_obs_stats(delta, base, normalised)


@pytest.mark.parametrize("steps", [32, 33])
def test_a_jump_just_after_a_chunk_passes(steps: int) -> None:
    # One env whose observation jumps at each episode's end: a delta that counted the row
    # after its chunk (the next chunk's first) in place of its own first row claimed a
    # spread its observations do not have.
    for delta, base, normalised in honest_chunks("fleetmind-test/Drift-v0", steps, 1, 60, 3):
        check_obs_stats(delta, base, normalised)


def _one_chunk() -> tuple[RunningMeanStd, RunningMeanStd, np.ndarray]:
    chunks = honest_chunks("CartPole-v1", 8, 2, chunks=20, seed=1)
    return list(chunks)[-1]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"count": 15.0}, "obs_stats.count=15 but the chunk holds T*E=16"),
        ({"mean": 20.0}, "obs_stats.mean[0]"),
        ({"var": 1e4}, "obs_stats.var[0]"),
    ],
)
def test_a_delta_that_disagrees_is_refused(change: dict[str, float], words: str) -> None:
    delta, base, normalised = _one_chunk()
    delta.count = change.get("count", delta.count)
    delta.mean = delta.mean + change.get("mean", 0.0) * np.sqrt(base.var)
    delta.var = delta.var * change.get("var", 1.0)
    with pytest.raises(InvalidInputError, match=words.replace("[", r"\[").replace("*", r"\*")):
        check_obs_stats(delta, base, normalised)


def test_normalised_values_beyond_the_clip_are_refused() -> None:
    delta, base, normalised = _one_chunk()
    normalised = normalised.copy()
    normalised[0, 0, 0] = 11.0
    with pytest.raises(InvalidInputError, match="normalised observations lie in"):
        check_obs_stats(delta, base, normalised)


def test_a_far_mean_cannot_widen_its_own_tolerance() -> None:
    # The fourth chunk of 256 rows: the view merges it with only 768 earlier rows, so the
    # delta weighs a quarter of the view; moving its mean by 1e6 must not move the scale.
    delta, base, normalised = list(honest_chunks("CartPole-v1", 64, 4, chunks=4, seed=2))[-1]
    delta.mean = delta.mean + 1e6
    with pytest.raises(InvalidInputError, match=r"obs_stats\.mean\[0\]"):
        check_obs_stats(delta, base, normalised)


def test_a_blown_up_variance_cannot_widen_its_own_bound() -> None:
    # The rows vary twice as widely as the learner's statistics (a policy that reaches
    # new states), so the view they were normalised with weighs the claimed variance
    # too; a claim of 1e12 must still be refused.
    rng = np.random.default_rng(0)
    base = RunningMeanStd.from_data(rng.standard_normal((2000, 4)))
    normalised = (2 * rng.standard_normal((64, 4, 4))).astype(np.float32)
    delta = RunningMeanStd.from_data(normalised.reshape(-1, 4).astype(np.float64))
    delta.var = delta.var * 1e12
    with pytest.raises(InvalidInputError, match=r"obs_stats\.var\[0\]"):
        check_obs_stats(delta, base, normalised)
