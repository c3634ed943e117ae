"""What an edge client knows about each place a decision can run, and its E[T].

Each decision is one task that arises on the edge (node 0); it may run there or be
moved to remote target ``j`` (node ``j``, 1..k). The edge client scores each place
with the mean completion time of :mod:`fleetmind.envs.scenarios.offload.expected_time`,
the plan of a single task (``p = [1]``) run at that place::

    E[T]_j = t_j + t_0j

=========  =================================================================
symbol     measured as (moving averages of the latest measurements)
=========  =================================================================
``t_j``    local: the seconds the local agent took to decide; remote: the
           server's ``queue_time_us + compute_time_us`` of its answers
``t_0j``   remote: the round trip of the call less the server's time (network,
           encoding, the client's own work); local: none (``t_00`` is no move)
=========  =================================================================

The model has no queues of its own; the server's queue time is inside ``t_j``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fleetmind.core.errors import ConfigError
from fleetmind.envs.scenarios.offload.expected_time import OffloadPlan

LOCAL = 0
"""Node of the edge itself."""


@dataclass
class MovingAverage:
    """An exponentially weighted mean; the first sample sets it."""

    weight: float
    """Weight of a new sample, in (0, 1]."""
    value: float = math.nan
    """The mean so far; NaN before the first sample."""

    def __post_init__(self) -> None:
        if not 0 < self.weight <= 1:
            raise ConfigError(f"moving average weight={self.weight} must be within (0, 1]")

    def add(self, sample: float, weight: float | None = None) -> float:
        """Fold ``sample`` in (with ``weight`` instead of the usual one); the new mean."""
        w = self.weight if weight is None else weight
        self.value = sample if math.isnan(self.value) else self.value + w * (sample - self.value)
        return self.value

    def reset(self, sample: float) -> None:
        """Forget the past: the mean is ``sample``."""
        self.value = sample


@dataclass
class PlaceEstimate:
    """Moving averages of one place (node ``node`` of ``nodes``) and its E[T]."""

    node: int
    nodes: int
    weight: float
    memory_s: float = 2.0
    """A sample weighs at least ``1 - exp(-dt / memory_s)``, ``dt`` the time since the
    previous one: a sparse measurement (a probe) stands for the time since the last."""
    compute: MovingAverage = field(init=False)
    """t_j, seconds."""
    transfer: MovingAverage = field(init=False)
    """t_0j, seconds (0 for the edge itself)."""
    plan: OffloadPlan = field(init=False)
    """The one-task plan of running here; its arrays hold the averages."""
    expected_s: float = math.inf
    """E[T] of running here; infinite until measured."""
    measured_at: float = -math.inf
    """Clock time of the latest measurement."""

    def __post_init__(self) -> None:
        self.compute = MovingAverage(self.weight)
        self.transfer = MovingAverage(self.weight)
        # Checked once; a measurement then only writes non-negative finite seconds into
        # the plan's own arrays (checking a plan each time cost more than a small forward).
        self.plan = OffloadPlan.of([1.0], [0.0], np.zeros((1, self.nodes)))

    def record(
        self, compute_s: float, transfer_s: float, now: float, *, fresh: bool = False
    ) -> None:
        """Fold in one measurement (``fresh``: forget the older ones) and rescore."""
        compute_s, transfer_s = max(0.0, compute_s), max(0.0, transfer_s)
        if not (math.isfinite(compute_s) and math.isfinite(transfer_s)):
            return
        if fresh:
            self.compute.reset(compute_s)
            self.transfer.reset(transfer_s)
        else:
            weight = max(self.weight, -math.expm1(-(now - self.measured_at) / self.memory_s))
            self.compute.add(compute_s, weight)
            self.transfer.add(transfer_s, weight)
        self.measured_at = now
        self.plan.exec_times_s[0] = self.compute.value
        self.plan.transfer_delays_s[0, self.node] = self.transfer.value
        self.expected_s = self.plan.expected_time()


def single_task_time(node: int, nodes: int, exec_s: float, transfer_s: float) -> float:
    """E[T] of the plan in which the edge's one task runs at ``node`` (of ``nodes``)."""
    delays = np.zeros((1, nodes))
    delays[0, node] = transfer_s
    return OffloadPlan.of([1.0], [exec_s], delays).expected_time()


@dataclass(frozen=True)
class Choice:
    """Where a decision should run and why."""

    node: int
    """:data:`LOCAL` or the remote target's node (1..k)."""
    reason: str
    """``faster`` (least E[T] in time), ``deadline`` (a faster remote would be late),
    ``no_remote`` (no remote target is up), ``returned`` (a target back up, measured by
    this decision: see :mod:`fleetmind.serve.offloading`)."""
    remote_timeout_s: float
    """Deadline of the remote call: the decision's, less the local fallback's margin."""


def choose(
    places: list[PlaceEstimate], up: list[bool], deadline_s: float, local_margin: float
) -> Choice:
    """The place of least E[T] among the edge and the remote targets that are ``up`` and
    would answer before ``deadline_s`` less ``local_margin`` times the local E[T]."""
    local = places[LOCAL].expected_s
    budget = deadline_s - local_margin * (local if math.isfinite(local) else 0.0)
    best, best_time, reason = LOCAL, local, "faster"
    if not any(up[1:]):
        reason = "no_remote"
    for place in places[1:]:
        if not up[place.node] or place.expected_s >= best_time:
            continue
        if place.expected_s > budget:
            reason = "deadline"
            continue
        best, best_time, reason = place.node, place.expected_s, "faster"
    return Choice(best, reason, max(budget, 0.0))
