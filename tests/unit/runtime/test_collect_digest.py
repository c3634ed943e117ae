"""What an actor collects with a fixed seed does not change when its step gets cheaper.

An actor's step (env wrappers, the policy's forward pass for one row, the
observation statistics, the collector's bookkeeping) is tuned for CPU; each chunk it
collects must stay the same to the bit: the same actions, observations, rewards,
statistics and episodes for the same seed. The digests below were recorded from
the collector before that tuning (with each row folded into the statistics after it
is normalised, so that a chunk's delta covers exactly its own rows), on x86-64 with numpy's bundled
OpenBLAS; a BLAS that rounds the network's matrix products differently changes them
without any change to fleetmind.
"""

from __future__ import annotations

import hashlib
import platform

import numpy as np
import pytest

from fleetmind.algos.ppo.config import PPOConfig
from fleetmind.algos.registry import get_algorithm
from fleetmind.core.batch import Trajectory
from fleetmind.core.normalizer import RunningMeanStd
from fleetmind.runtime.actor.source import TimedPolicy
from fleetmind.runtime.actor.tracking_stats import TrackingStats
from fleetmind.runtime.parts import build_parts

CHUNKS = 4
STEPS = 32

DIGESTS = {
    ("CartPole-v1", 1): "4f891cc9eacc3455f55b65d6cf88e0f3788623d53d8eac2373e7dd2c09b21853",
    ("CartPole-v1", 3): "474a184b19429385850d44928f2e3ea27fe3d79a58b12e28345172441d49b6e3",
    ("Acrobot-v1", 1): "04ad40f879471f162d34c2064fdefd2ff242dea41e7257204b9f9a541b3c0a08",
    ("Pendulum-v1", 1): "707f87284d3f00af72065e4f9aac18a66c0c118f76fdfd538dbfc58b37a3f7a7",
    ("FrozenLake-v1", 2): "ee566b742815dfee5a008babecd33fc676216e618653211aaec07a4d8768e110",
}
"""sha256 of every chunk's arrays, statistics delta and episodes, by (env id, copies)."""


def _fold(digest: hashlib._Hash, array: np.ndarray | None) -> None:
    if array is None:
        digest.update(b"none")
        return
    array = np.ascontiguousarray(array)
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.tobytes())


def _fold_trajectory(digest: hashlib._Hash, t: Trajectory) -> None:
    for name in ("obs", "actions", "log_probs", "values", "rewards", "terminated"):
        _fold(digest, getattr(t, name))
    for name in ("truncated", "valid", "next_values", "decision"):
        _fold(digest, getattr(t, name))


def _fold_stats(digest: hashlib._Hash, stats: RunningMeanStd | None) -> None:
    if stats is not None:
        _fold(digest, stats.mean)
        _fold(digest, stats.var)
        digest.update(repr(stats.count).encode())


def collect_digest(env_id: str, envs: int) -> str:
    """sha256 of ``CHUNKS`` chunks an actor collects on ``env_id`` with seed 7."""
    parts = build_parts(
        env_id, get_algorithm("ppo"), PPOConfig(), envs=envs, seed=7, normalize_obs=True,
        stats=TrackingStats,
    )  # fmt: skip
    collector = parts.collector(STEPS, reward_gamma=0.99, seed=7)
    policy = TimedPolicy(parts.learner.rollout_policy())
    digest = hashlib.sha256()
    try:
        for version in range(CHUNKS):
            for trajectory in collector.collect(policy, version):
                _fold_trajectory(digest, trajectory)
            _fold(digest, collector.raw_rewards())
            for stats in parts.obs_stats:
                _fold_stats(digest, stats)
                if isinstance(stats, TrackingStats):
                    _fold_stats(digest, stats.take_delta())
            for episode in collector.take_episodes():
                digest.update(repr(episode).encode())
    finally:
        parts.env.close()
    return digest.hexdigest()


@pytest.mark.skipif(platform.machine() != "x86_64", reason="digests recorded on x86-64")
@pytest.mark.parametrize(("env_id", "envs"), sorted(DIGESTS))
def test_fixed_seed_chunks_are_unchanged(env_id: str, envs: int) -> None:
    assert collect_digest(env_id, envs) == DIGESTS[(env_id, envs)]


if __name__ == "__main__":
    for key in sorted(DIGESTS):
        print(f"    {key!r}: {collect_digest(*key)!r},")
