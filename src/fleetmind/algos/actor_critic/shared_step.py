"""Gradient steps shared by several learners: one schedule, averaged gradients.

Learners that train one policy together each hold a part of the batch. Before
every optimizer step they sum, with a :class:`fleetmind.algos.base.SumReducer`,
their gradients weighted by their sample counts, so each applies the gradient of
the whole minibatch and the parameters stay identical everywhere::

    schedule = SharedSchedule.agree(reducer, local_samples, local_env_steps, minibatch)
    for epoch in range(epochs):
        for part in schedule.parts(permutation):        # the same count on every learner
            grads, stats = local gradients of ``part``   # zeros when ``part`` is empty
            grads, stats = average(reducer, grads, stats, len(part))
            clip and step

A learner with no data (all its actors gone) still takes part with zero-weighted
gradients, so the collective never waits for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fleetmind.core.learning import SumReducer


@dataclass(frozen=True)
class SharedSchedule:
    """How many minibatches every learner runs per epoch, agreed once per update."""

    total_samples: int
    """Valid samples over all learners."""
    total_env_steps: int
    """Environment steps (valid or not) over all learners."""
    minibatches: int
    """Minibatches per epoch, the same on every learner."""

    @classmethod
    def agree(
        cls, reducer: SumReducer, samples: int, env_steps: int, minibatch_size: int
    ) -> SharedSchedule:
        """Sum the counts of every learner and split into ``minibatch_size`` steps."""
        totals = reducer.all_reduce_sum(np.array([samples, env_steps], dtype=np.float64))
        total_samples = round(float(totals[0]))
        return cls(
            total_samples=total_samples,
            total_env_steps=round(float(totals[1])),
            minibatches=max(1, total_samples // max(1, minibatch_size)),
        )

    def parts(self, permutation: np.ndarray) -> list[np.ndarray]:
        """This learner's share of each minibatch (some may be empty)."""
        return list(np.array_split(permutation, self.minibatches))


def average(
    reducer: SumReducer, grads: list[np.ndarray], stats: dict[str, float], weight: int
) -> tuple[list[np.ndarray], dict[str, float]]:
    """Sample-weighted means of ``grads`` and ``stats`` over every learner (one all-reduce).

    ``stats`` must have the same keys in the same order on every learner.
    """
    keys = list(stats)
    tail = np.array([weight, *(stats[k] * weight for k in keys)], dtype=np.float32)
    flat = np.concatenate([*(g.astype(np.float32).ravel() * weight for g in grads), tail])
    summed = reducer.all_reduce_sum(flat)
    total = float(summed[-len(tail)])
    scale = 1.0 / total if total > 0 else 0.0
    out: list[np.ndarray] = []
    offset = 0
    for g in grads:
        out.append((summed[offset : offset + g.size] * scale).reshape(g.shape).astype(g.dtype))
        offset += g.size
    means = {k: float(v) * scale for k, v in zip(keys, summed[offset + 1 :], strict=True)}
    return out, means
