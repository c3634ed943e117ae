"""Offloading measures of an episode, the same for every policy.

Over the tasks placed in the episode (each runs to completion, see
:mod:`.simulator`):

* ``mean_completion_time_s``: mean time from a task arising to its result;
* ``deadline_miss_rate``: share of tasks that finished after their deadline;
* ``mean_energy_j``: mean on-board energy per task (computing or transmitting);
* ``share_local``, ``share_edge``, ``share_cloud``: where the tasks ran;
* ``tasks``: how many there were.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from fleetmind.envs.scenarios.offload.simulator import OffloadTotals

METRIC_NAMES = ("mean_completion_time_s", "deadline_miss_rate", "mean_energy_j")
"""The measures ``fleetmind baseline`` prints first."""
_SHARES = ("share_local", "share_edge", "share_cloud")


@dataclass(frozen=True)
class OffloadMetrics:
    """The measures of one episode."""

    mean_completion_time_s: float
    """Mean seconds from a task arising to its completion."""
    deadline_miss_rate: float
    """Share of the tasks that completed after their deadline."""
    mean_energy_j: float
    """Mean on-board joules per task."""
    share_local: float
    """Share of the tasks run on board."""
    share_edge: float
    """Share of the tasks run on an edge server."""
    share_cloud: float
    """Share of the tasks run in the cloud."""
    tasks: int
    """Tasks completed."""
    completion_time_sd_s: float
    """Standard deviation of the tasks' completion times."""

    def to_dict(self) -> dict[str, float | int]:
        """A JSON-compatible dict."""
        return asdict(self)


def metrics_from_totals(totals: OffloadTotals) -> OffloadMetrics:
    """Turn an episode's running sums into :class:`OffloadMetrics`."""
    n = max(totals.tasks, 1)
    mean = totals.time_s / n
    variance = max(totals.time_sq_s2 / n - mean**2, 0.0)
    placed = totals.placed / max(int(totals.placed.sum()), 1)
    return OffloadMetrics(
        mean_completion_time_s=mean,
        deadline_miss_rate=totals.misses / n,
        mean_energy_j=totals.energy_j / n,
        share_local=float(placed[0]),
        share_edge=float(placed[1]),
        share_cloud=float(placed[2]),
        tasks=totals.tasks,
        completion_time_sd_s=math.sqrt(variance),
    )


def summarize(episodes: Sequence[OffloadMetrics]) -> dict[str, Any]:
    """Task-weighted means over the episodes plus the per-episode values."""
    rows = [m.to_dict() for m in episodes]
    weights = np.array([max(m.tasks, 1) for m in episodes], dtype=np.float64)
    out: dict[str, Any] = {}
    for name in (*METRIC_NAMES, *_SHARES):
        values = np.array([r[name] for r in rows], dtype=np.float64)
        out[name] = float(np.average(values, weights=weights)) if rows else 0.0
    out["tasks"] = int(sum(m.tasks for m in episodes))
    return {**out, "episodes": rows}
