"""What an actor collects with a fixed seed does not change when its step gets cheaper.

An actor's step (env wrappers, the policy's forward pass for one row, the
observation statistics, the collector's bookkeeping) is tuned for CPU; each chunk it
collects must stay the same to the bit: the same actions, observations, rewards,
statistics and episodes for the same seed. The digests below were recorded from
the collector before that tuning (with each row folded into the statistics after it
is normalised, so that a chunk's delta covers exactly its own rows), on x86-64 with numpy's bundled
OpenBLAS on one thread and its AVX2 kernels; a BLAS that rounds the network's matrix products
differently changes them without any change to fleetmind.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fleetmind
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
    ("CartPole-v1", 1): "12490697ad1693d2852bd4f9fe3499f9befe0f5d63cfa85eb375ac325741991b",
    ("CartPole-v1", 3): "a6d3892b27522feb7ab583ab5ffe95cc04a555c7722d6ecd235b1846519d4e36",
    ("Acrobot-v1", 1): "bb61cd1ae91d5e62a634c6bafbb55fb1adfa73d55b0f7a7aa82c5ce95f8a4b5c",
    ("Pendulum-v1", 1): "3347641edf7ff5c2ef0e6057f0ec9f1ed9677c094de8f8f96f3f4a2b3881b1ee",
    ("FrozenLake-v1", 2): "fb23067910869cb6db06108ed5959db11e9d8ee6c7cc41ccdfd9009c042b5e22",
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


ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
"""BLAS threads split a matrix product's sums differently: the digests are of one thread,
computed in a fresh interpreter (another test may have changed this one's threads)."""
AVX2_KERNELS = {"OPENBLAS_CORETYPE": "Haswell"}
"""OpenBLAS picks its kernels for the CPU it runs on, and an AVX-512 kernel rounds the
network's products differently from an AVX2 one (measured: every digest changed on an
AVX-512 EPYC). The digests are of the AVX2 (Haswell) kernels, which any x86-64 CPU
with AVX2 runs."""


def _has_avx2() -> bool:
    try:
        return " avx2" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


@pytest.mark.skipif(platform.machine() != "x86_64", reason="digests recorded on x86-64")
@pytest.mark.skipif(not _has_avx2(), reason="digests recorded with OpenBLAS's AVX2 kernels")
def test_fixed_seed_chunks_are_unchanged() -> None:
    env = {**os.environ, **ONE_THREAD, **AVX2_KERNELS}
    env["PYTHONPATH"] = str(Path(fleetmind.__file__).parents[1])
    done = subprocess.run(
        [sys.executable, __file__], env=env, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert {f"{env_id} x{envs}": got[f"{env_id} x{envs}"] for env_id, envs in DIGESTS} == {
        f"{env_id} x{envs}": digest for (env_id, envs), digest in DIGESTS.items()
    }


if __name__ == "__main__":
    print(json.dumps({f"{env_id} x{envs}": collect_digest(env_id, envs)
                      for env_id, envs in sorted(DIGESTS)}))  # fmt: skip
