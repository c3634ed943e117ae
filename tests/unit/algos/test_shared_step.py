"""Learners that share updates keep identical parameters; the average is the whole batch's."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
import torch

from fleetmind.algos.actor_critic.shared_step import SharedSchedule, average
from fleetmind.algos.impala.learner import ImpalaConfig, ImpalaLearner
from fleetmind.algos.ppo.config import PPOConfig
from fleetmind.algos.ppo.learner import PPOLearner
from fleetmind.core.batch import Trajectory
from fleetmind.core.spaces import SpaceSpec
from fleetmind.runtime.chunk_format import empty_trajectory

OBS = SpaceSpec("box", (4,), "float32")
ACT = SpaceSpec("discrete", (), "int64", n=2)


class ThreadGroup:
    """A SumReducer for learners in threads of one process (the seam the runtime fills)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.barrier = threading.Barrier(size, timeout=30)
        self.slots: list[Any] = [None] * size

    def member(self, rank: int) -> Member:
        return Member(self, rank)


def train_together(learners: list[Any], batches: list[list[Any]]) -> None:
    """Each learner updates on its batches in a thread of its own, sharing a ThreadGroup."""
    group = ThreadGroup(len(learners))
    for rank, learner in enumerate(learners):
        learner.reducer = group.member(rank)
    threads = [
        threading.Thread(target=lambda r=r: [learners[r].update(b) for b in batches[r]])
        for r in range(len(learners))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)


class Member:
    def __init__(self, group: ThreadGroup, rank: int) -> None:
        self.group = group
        self.rank = rank
        self.world_size = group.size

    def all_reduce_sum(self, values: np.ndarray) -> np.ndarray:
        self.group.slots[self.rank] = np.array(values, copy=True)
        self.group.barrier.wait()
        total: np.ndarray = np.sum(self.group.slots, axis=0)
        self.group.barrier.wait()
        return total


def _trajectory(envs: int, seed: int, steps: int = 16) -> Trajectory:
    rng = np.random.default_rng(seed)
    shape = (steps, envs)
    return Trajectory(
        obs=rng.normal(size=(*shape, 4)).astype(np.float32),
        actions=rng.integers(0, 2, size=shape),
        log_probs=np.full(shape, np.log(0.5), np.float32),
        values=rng.normal(size=shape).astype(np.float32),
        rewards=np.ones(shape, np.float32),
        terminated=rng.random(shape) < 0.05,
        truncated=np.zeros(shape, bool),
        valid=np.ones(shape, bool),
        next_values=rng.normal(size=shape).astype(np.float32),
    )


def _run_group(backend: str, batches: list[list[Trajectory]]) -> list[PPOLearner]:
    cfg = PPOConfig(backend=backend, minibatch_size=32, update_epochs=2, hidden_sizes=(8, 8))  # type: ignore[arg-type]
    group = ThreadGroup(len(batches))
    learners = [PPOLearner(cfg, OBS, ACT, seed=3) for _ in batches]
    for rank, learner in enumerate(learners):
        learner.reducer = group.member(rank)
        learner.total_env_steps = 10_000
    errors: list[BaseException] = []

    def work(rank: int) -> None:
        torch.manual_seed(100 + rank)  # each learner shuffles its own way
        try:
            for trajectory in batches[rank]:
                learners[rank].update(trajectory)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            group.barrier.abort()

    threads = [threading.Thread(target=work, args=(r,)) for r in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return learners


def _params(learner: PPOLearner) -> list[np.ndarray]:
    return [p.detach().numpy().copy() for p in learner.net.parameters()]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_learners_sharing_updates_keep_identical_parameters(backend: str) -> None:
    batches = [[_trajectory(3, 10 * u + r) for u in range(3)] for r in range(2)]
    first, second = _run_group(backend, batches)
    before = _params(PPOLearner(first.config, OBS, ACT, seed=3))
    for a, b in zip(_params(first), _params(second), strict=True):
        np.testing.assert_array_equal(a, b)
    assert first.version == second.version == 3
    assert any(not np.allclose(a, s) for a, s in zip(_params(first), before, strict=True))
    assert first.env_steps == second.env_steps == 3 * 2 * 3 * 16  # every learner's steps


def test_a_learner_without_data_still_takes_part() -> None:
    empty = empty_trajectory(16, tuple(OBS.shape), ACT)
    batches = [[_trajectory(4, u) for u in range(2)], [empty, empty]]
    first, second = _run_group("numpy", batches)
    for a, b in zip(_params(first), _params(second), strict=True):
        np.testing.assert_array_equal(a, b)
    assert first.version == second.version == 2
    assert first.env_steps == second.env_steps == 2 * 4 * 16


def test_average_weights_by_samples_and_the_schedule_agrees() -> None:
    group = ThreadGroup(2)
    results: list[Any] = [None, None]
    grads = [[np.array([1.0, 2.0], np.float32)], [np.array([4.0, 8.0], np.float32)]]
    weights = [1, 3]

    def work(rank: int) -> None:
        member = group.member(rank)
        schedule = SharedSchedule.agree(member, [10, 70][rank], [12, 70][rank], 32)
        results[rank] = (
            schedule,
            average(member, grads[rank], {"loss": float(rank)}, weights[rank]),
        )

    threads = [threading.Thread(target=work, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    for schedule, (avg, stats) in results:
        assert schedule == SharedSchedule(total_samples=80, total_env_steps=82, minibatches=2)
        np.testing.assert_allclose(avg[0], [(1 * 1 + 4 * 3) / 4, (2 * 1 + 8 * 3) / 4])
        assert stats["loss"] == pytest.approx(0.75)
    assert len(results[0][0].parts(np.arange(10))) == 2


def test_impala_learners_share_updates_even_without_data() -> None:
    empty = empty_trajectory(16, tuple(OBS.shape), ACT)
    batches = [[_trajectory(3, u) for u in range(2)], [_trajectory(2, 9), empty]]
    cfg = ImpalaConfig(hidden_sizes=(8, 8))
    learners = [ImpalaLearner(cfg, OBS, ACT, seed=5) for _ in range(2)]
    train_together(learners, batches)
    first, second = learners
    for a, b in zip(first.net.parameters(), second.net.parameters(), strict=True):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    assert first.version == second.version == 2
    assert first.env_steps == second.env_steps == 16 * (3 + 2) + 16 * 3
