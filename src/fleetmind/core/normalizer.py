"""Running mean and variance with the parallel (Chan et al.) merge.

Statistics computed on separate shards of data (actors, processes, machines) merge
into exactly the statistics of the concatenated data::

    a = RunningMeanStd.from_data(x1)
    b = RunningMeanStd.from_data(x2)
    a.merge(b)                      # == RunningMeanStd.from_data(concat(x1, x2))

:class:`ObservationNormalizer` uses them to standardise observations and clip the
result, the usual preprocessing of continuous observations in PPO.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from fleetmind.core.errors import InvalidInputError

CLIP = 10.0
"""Standardised observations are clipped to ``[-CLIP, CLIP]``."""
EPSILON = 1e-8
"""Added to the variance before the square root."""


@dataclass
class RunningMeanStd:
    """Mean, population variance and count of a stream of ``[N, *shape]`` arrays."""

    shape: tuple[int, ...]
    """Shape of one sample."""
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Per-element mean (float64)."""
    var: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Per-element population variance (float64)."""
    count: float = 0.0
    """Number of samples seen (a float so that merged counts stay exact)."""

    def __post_init__(self) -> None:
        if self.mean.shape != self.shape:
            self.mean = np.zeros(self.shape, dtype=np.float64)
        if self.var.shape != self.shape:
            self.var = np.ones(self.shape, dtype=np.float64)

    @classmethod
    def from_data(cls, data: np.ndarray) -> RunningMeanStd:
        """Statistics of one ``[N, *shape]`` array."""
        data = np.asarray(data, dtype=np.float64)
        return cls(
            shape=tuple(data.shape[1:]),
            mean=data.mean(axis=0),
            var=data.var(axis=0),
            count=float(data.shape[0]),
        )

    def update(self, data: np.ndarray) -> None:
        """Fold a ``[N, *shape]`` batch into the statistics.

        The same arithmetic as ``merge(from_data(data))``, in the same order (so the
        results are identical), without the per-call overhead of ``np.mean`` and
        ``np.var``: an actor calls this after every environment step.
        """
        n = data.shape[0]
        if n == 0:
            return
        x = np.asarray(data, dtype=np.float64)
        mean = np.add.reduce(x, axis=0) / n
        if n == 1:  # one row (an actor with one env): its variance is exactly zero
            self._fold(mean, None, 1.0)
            return
        dev = x - mean
        self._fold(mean, np.add.reduce(np.multiply(dev, dev, out=dev), axis=0) / n, float(n))

    def merge(self, other: RunningMeanStd) -> None:
        """Fold another shard's statistics into these (Chan's parallel update)."""
        self._fold(other.mean, other.var, other.count)

    def _fold(self, mean: np.ndarray, var: np.ndarray | None, count: float) -> None:
        """Chan's update; ``var`` None stands for zeros (a single sample), whose term
        ``var * count`` adds exactly nothing to the non-negative ``m2`` and is skipped."""
        if count == 0:
            return
        if self.count == 0:
            var = np.zeros_like(mean) if var is None else var.copy()
            self.mean, self.var, self.count = mean.copy(), var, count
            return
        total = self.count + count
        delta = mean - self.mean
        m2 = self.var * self.count
        if var is not None:
            m2 = m2 + var * count
        m2 = m2 + delta**2 * self.count * count / total
        self.mean = self.mean + delta * count / total
        self.var = m2 / total
        self.count = total

    def copy(self) -> RunningMeanStd:
        """An independent copy."""
        return RunningMeanStd(self.shape, self.mean.copy(), self.var.copy(), self.count)


@dataclass
class ObservationNormalizer:
    """Standardise observations with running statistics and clip the result."""

    stats: RunningMeanStd
    """The running statistics."""
    clip: float = CLIP
    """Standardised values are clipped to ``[-clip, clip]``."""
    epsilon: float = EPSILON
    """Added to the variance before the square root."""

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Standardise ``obs`` (float32 out) without updating the statistics."""
        scale = 1.0 / np.sqrt(self.stats.var + self.epsilon)
        out = np.minimum(np.maximum((obs - self.stats.mean) * scale, -self.clip), self.clip)
        return np.asarray(out, dtype=np.float32)


def stats_dim(parts: Sequence[RunningMeanStd | None]) -> int | None:
    """Length of the statistics vector of ``parts`` (None when all are None)."""
    dims = [int(np.prod(p.shape)) for p in parts if p is not None]
    return sum(dims) if dims else None


def concat_stats(parts: Sequence[RunningMeanStd | None]) -> RunningMeanStd | None:
    """One statistics vector: every present part's mean and var end to end.

    The parts of one run (each agent's observation, the global state) see the same
    rows, one per env copy per step, so they share one count; the vector is exact
    under Chan's merge.
    """
    present = [p for p in parts if p is not None]
    if not present:
        return None
    mean = np.concatenate([np.asarray(p.mean, np.float64).reshape(-1) for p in present])
    var = np.concatenate([np.asarray(p.var, np.float64).reshape(-1) for p in present])
    return RunningMeanStd(mean.shape, mean, var, float(present[0].count))


def split_stats(
    merged: RunningMeanStd, parts: Sequence[RunningMeanStd | None]
) -> list[RunningMeanStd | None]:
    """Inverse of :func:`concat_stats`: one statistics object per present part."""
    total = stats_dim(parts) or 0
    if merged.mean.size != total:
        raise InvalidInputError(
            f"statistics hold {merged.mean.size} values; this run normalises {total}"
        )
    out: list[RunningMeanStd | None] = []
    start = 0
    for part in parts:
        if part is None:
            out.append(None)
            continue
        size = int(np.prod(part.shape))
        mean = np.asarray(merged.mean).reshape(-1)[start : start + size].reshape(part.shape)
        var = np.asarray(merged.var).reshape(-1)[start : start + size].reshape(part.shape)
        out.append(RunningMeanStd(part.shape, mean.copy(), var.copy(), float(merged.count)))
        start += size
    return out
