"""Is a chunk's observation-statistics delta the statistics of the observations it sent?

An actor normalises each observation with its view of the statistics and sends the
normalised values, plus the delta: count, mean and variance of the raw observations
of the chunk's ``T x E`` rows (exactly the rows it sends: the collector folds a row
once it is normalised). Its view at step ``t`` is the statistics published with the
chunk's policy version (``base``) merged with the chunk's own rows before ``t``; an
actor that sends several chunks under one version starts each of them from ``base``
again (:class:`~fleetmind.runtime.actor.tracking_stats.TrackingStats`), since the
rows of its earlier chunks are not in ``base``. The learner rebuilds that view from
``base`` and the delta (as if the delta's rows came evenly; its variance as the
count-weighted mean of the two, so a delta cannot widen the scale by moving its
mean), de-normalises the observations with it and compares::

    check_obs_stats(delta, base, normalised)   # normalised: [T, E, D], the stats' parts

It refuses (INVALID_ARGUMENT naming the field) a count other than ``T * E``, a
normalised value outside the normaliser's clip, a mean farther from the rebuilt
observations' mean than their spread allows, and a variance above what the
learner's statistics and the normalised values' spread allow (``_variance_bound``). The
tolerances cover an honest actor's drift within a chunk (measured on CartPole,
Pendulum, MountainCar and Acrobot chunks of 2 to 1024 rows: see
``tests/unit/runtime/test_obs_check.py``). A chunk of one row is checked for its
count and clip only; a column whose values reach the clip while the learner's
statistics are thin, for its variance only. What is not proven: the raw scale of
observations that agree with their own delta; while the learner's statistics are
thin (its first updates), or where values sit at the clip, such a delta moves them as
far as the actor says.
"""

from __future__ import annotations

import numpy as np

from fleetmind.core.errors import InvalidInputError
from fleetmind.core.normalizer import CLIP, EPSILON, RunningMeanStd

MEAN_SPREADS = 3.0
"""The delta's mean may lie this many spreads (plus ``8 / sqrt(rows)``) from the mean
of the rebuilt observations."""
VAR_RATIO = 4.0
"""The delta's variance may exceed the rebuilt observations' by this factor (plus
``400 / rows``)."""
THIN = 2
"""Below this many times a chunk's rows, the learner's statistics are too thin to bound
the chunk's variance by."""
FLOOR = 0.05
"""Share of the rebuilt view's variance added to both spreads (rows that barely move)."""


def check_obs_stats(delta: RunningMeanStd, base: RunningMeanStd, normalised: np.ndarray) -> None:
    """InvalidInputError when ``delta`` cannot be the statistics of ``normalised``'s rows."""
    steps, envs = normalised.shape[:2]
    rows = steps * envs
    if delta.count != rows:
        raise InvalidInputError(
            f"obs_stats.count={delta.count:g} but the chunk holds T*E={rows} observations"
        )
    if normalised.size and float(np.abs(normalised).max()) > CLIP * (1 + 1e-6):
        raise InvalidInputError(
            f"normalised observations lie in [-{CLIP:g}, {CLIP:g}]; this chunk's reach "
            f"{float(np.abs(normalised).max()):.6g}"
        )
    if rows < 2:
        return
    x = normalised.reshape(steps, envs, -1).astype(np.float64)
    mean, var, view_var = _rebuilt(delta, base, x, envs)
    spread = np.maximum(delta.var, var) + FLOOR * view_var + EPSILON
    allowed = (MEAN_SPREADS + 8 / np.sqrt(rows)) * np.sqrt(spread) + 1e-6 * np.abs(delta.mean)
    # Values at the clip of a view still thin (a fresh run) left its range: they say
    # only on which side of it the rows lie, not where, so their mean is not checked.
    lost = base.count < THIN * rows
    lost &= np.abs(x.reshape(rows, -1)).max(axis=0) >= CLIP * (1 - 1e-6)
    far = np.flatnonzero(~(np.abs(mean - delta.mean) <= allowed) & ~lost)
    if far.size:
        j = int(far[0])
        raise InvalidInputError(
            f"obs_stats.mean[{j}]={delta.mean[j]:.6g} but the chunk's observations, "
            f"de-normalised, average {mean[j]:.6g}"
        )
    limit = (VAR_RATIO + 400 / rows) * _variance_bound(delta, base, x, var, view_var, envs)
    wide = np.flatnonzero(~(delta.var <= limit + EPSILON))
    if wide.size:
        j = int(wide[0])
        raise InvalidInputError(
            f"obs_stats.var[{j}]={delta.var[j]:.6g} but the chunk's observations, "
            f"de-normalised, vary by {var[j]:.6g}"
        )


def _variance_bound(
    delta: RunningMeanStd,
    base: RunningMeanStd,
    x: np.ndarray,
    var: np.ndarray,
    view_var: np.ndarray,
    envs: int,
) -> np.ndarray:
    """The variance the rows can have, per element.

    Rows normalised with a view of variance ``(1 - s) * base.var + s * delta.var``
    (``s``: the chunk's mean share of the view) vary by about that times the
    normalised values' variance ``v``; solved for ``delta.var``, that is
    ``(1 - s) * base.var * v / (1 - s * v)``: a bound the delta cannot raise. Where
    the chunk dominates its own view (``s * v >= 1/2``), the learner's statistics hold
    fewer than ``THIN`` times the chunk's rows (a fresh run), or a value reached the
    clip (the rows left the view's range), only the weaker bound of the rebuilt rows
    themselves holds (which a delta raises by its share of the view).
    """
    steps = x.shape[0]
    seen = np.arange(steps, dtype=np.float64) * envs
    share = float(np.mean(seen / np.maximum(base.count + seen, 1e-300))) if base.count else 1.0
    flat = x.reshape(-1, x.shape[-1])
    spread = flat.var(axis=0)
    clipped = np.abs(flat).max(axis=0) >= CLIP * (1 - 1e-6)
    weak = share * spread >= 0.5
    tight = (1 - share) * base.var * spread / np.maximum(1 - share * spread, 0.5)
    loose = var + FLOOR * view_var
    weak |= base.count < THIN * flat.shape[0]
    return np.where(weak | clipped, loose, tight + FLOOR * (1 - share) * base.var)


def _rebuilt(
    delta: RunningMeanStd, base: RunningMeanStd, x: np.ndarray, envs: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and variance of the de-normalised rows; the variance of the view at the end."""
    steps = x.shape[0]
    seen = np.arange(steps + 1, dtype=np.float64) * envs  # the chunk's rows in the view
    total = base.count + seen
    share = np.divide(seen, total, out=np.zeros_like(seen), where=total > 0)[:, None]
    view_mean = base.mean + share * (delta.mean - base.mean)
    # Without the spread between the two means (share * (1 - share) * gap**2, a few
    # percent of an honest view's variance): a delta must not widen the scale it is
    # checked on by moving its mean.
    view_var = (1 - share) * base.var + share * delta.var
    raw = view_mean[:-1, None] + np.sqrt(view_var[:-1, None] + EPSILON) * x
    flat = raw.reshape(-1, x.shape[-1])
    return flat.mean(axis=0), flat.var(axis=0), view_var[-1]
