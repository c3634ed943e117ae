"""Small static instances: a batch of tasks placed at one moment, with a known state.

A :class:`StaticBatch` holds ``n <= 10`` new tasks and everything that decides
their completion times: each vehicle's CPU and radio queue, its link, every edge
server's backlog and the uploads already on their way to it (a new task can
overtake them in an edge queue, so their completion times count too). The same
rules as :mod:`.simulator` give every placement's completion times, so the
exhaustive optimum (all ``3**n`` placements, vectorised) is exact::

    batch = batch_from_simulator(sim)
    places, mean_time = exhaustive_optimum(batch)

Times are seconds from the batch's moment.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from fleetmind.core.errors import ConfigError
from fleetmind.envs.scenarios.offload.config import OffloadConfig
from fleetmind.envs.scenarios.offload.simulator import CLOUD, EDGE, LOCAL, OffloadSimulator

MAX_BATCH = 10
"""Largest batch the exhaustive optimum enumerates (3**10 = 59,049 placements)."""


@dataclass(frozen=True)
class StaticBatch:
    """``n`` new tasks (arising now) and ``q`` uploads in flight to edge servers."""

    vehicle: np.ndarray
    """``[n]`` the vehicle each new task belongs to."""
    local_time: np.ndarray
    """``[n]`` completion time if run on board (its CPU queue, then its cycles)."""
    ready: np.ndarray
    """``[n]`` when its upload would end (its radio queue, then its bits at its rate)."""
    edge: np.ndarray
    """``[n]`` its serving edge server."""
    edge_service: np.ndarray
    """``[n]`` seconds of edge CPU it needs."""
    cloud_time: np.ndarray
    """``[n]`` completion time if sent to the cloud."""
    predicted: np.ndarray
    """``[n, 3]`` what its vehicle predicts for each place (stale edge reports)."""
    backlog: np.ndarray
    """``[K]`` seconds of work queued at each edge server now."""
    inflight_ready: np.ndarray
    """``[q]`` when each upload already on its way reaches its edge server."""
    inflight_edge: np.ndarray
    """``[q]`` its edge server."""
    inflight_service: np.ndarray
    """``[q]`` seconds of edge CPU it needs."""
    inflight_age: np.ndarray
    """``[q]`` seconds since it arose (added to its completion time)."""

    @property
    def size(self) -> int:
        """Number of new tasks ``n``."""
        return len(self.vehicle)


def batch_from_simulator(sim: OffloadSimulator) -> StaticBatch:
    """The vehicles with a new task in ``sim`` now, and the state they see."""
    cfg = sim.config
    v = np.flatnonzero(sim.has_task)
    rate = sim.serving_rate()[v]
    radio_wait = np.maximum(sim.radio_free[v] - sim.now, 0.0)
    ready = radio_wait + sim.bits[v] / rate
    t = sim.tasks
    flying = np.flatnonzero((t["dest"] == EDGE) & np.isnan(t["finish"]))
    return StaticBatch(
        vehicle=v,
        local_time=np.maximum(sim.local_free[v] - sim.now, 0.0) + sim.cycles[v] / cfg.local_cpu_hz,
        ready=ready,
        edge=sim.serving[v],
        edge_service=sim.cycles[v] / cfg.edge_cpu_hz,
        cloud_time=ready + sim.cloud_delay(sim.bits[v], sim.cycles[v]),
        predicted=sim.predicted_times()[v],
        backlog=sim.backlog(),
        inflight_ready=t["ready"][flying] - sim.now,
        inflight_edge=t["edge"][flying],
        inflight_service=t["cycles"][flying] / cfg.edge_cpu_hz,
        inflight_age=sim.now - t["arrival"][flying],
    )


@lru_cache(maxsize=MAX_BATCH + 1)
def all_placements(n: int) -> np.ndarray:
    """``[3**n, n]`` every placement of ``n`` tasks, in lexicographic order."""
    rows = list(itertools.product((LOCAL, EDGE, CLOUD), repeat=n))
    return np.array(rows, np.int64).reshape(len(rows), n)


def completion_times(batch: StaticBatch, placements: np.ndarray) -> np.ndarray:
    """``[S, n + q]`` completion times of the new tasks, then of the uploads in flight,
    under each of ``S`` placements ``[S, n]``."""
    places = np.atleast_2d(np.asarray(placements, dtype=np.int64))
    s, n = places.shape
    if n != batch.size:
        raise ConfigError(f"a placement of this batch has {batch.size} places, got {n}")
    q = len(batch.inflight_ready)
    out = np.zeros((s, n + q))
    out[:, :n] = np.where(places == LOCAL, batch.local_time, 0.0)
    out[:, :n] += np.where(places == CLOUD, batch.cloud_time, 0.0)
    free = np.tile(batch.backlog, (s, 1))
    ready = np.concatenate([batch.ready, batch.inflight_ready])
    edge = np.concatenate([batch.edge, batch.inflight_edge])
    service = np.concatenate([batch.edge_service, batch.inflight_service])
    age = np.concatenate([np.zeros(n), batch.inflight_age])
    # First come first served at each edge server, in the order the uploads end.
    for j in np.lexsort((np.arange(n + q), ready)):
        queued = places[:, j] == EDGE if j < n else np.ones(s, bool)
        e = edge[j]
        finish = np.maximum(ready[j], free[:, e]) + service[j]
        free[:, e] = np.where(queued, finish, free[:, e])
        out[:, j] = np.where(queued, finish + age[j], out[:, j])
    return out


def mean_completion_time(batch: StaticBatch, placements: np.ndarray) -> np.ndarray:
    """``[S]`` mean completion time of the new tasks and the uploads in flight."""
    out: np.ndarray = completion_times(batch, placements).mean(axis=1)
    return out


def exhaustive_optimum(batch: StaticBatch) -> tuple[np.ndarray, float]:
    """The placement ``[n]`` with the least mean completion time, and that time."""
    if batch.size > MAX_BATCH:
        raise ConfigError(
            f"the exhaustive optimum enumerates 3**n placements and takes at most {MAX_BATCH} "
            f"tasks at once, got {batch.size}; use a scenario with at most {MAX_BATCH} vehicles"
        )
    if batch.size == 0:
        return np.zeros(0, np.int64), 0.0
    placements = all_placements(batch.size)
    cost = mean_completion_time(batch, placements)
    best = int(np.argmin(cost))
    return placements[best].copy(), float(cost[best])


def static_instance(
    config: OffloadConfig, seed: int, tasks: int = MAX_BATCH, warmup_steps: int = 0
) -> StaticBatch:
    """A batch of ``tasks`` new tasks on ``tasks`` random vehicles of a fresh episode
    (``seed``), after ``warmup_steps`` steps of every vehicle placing greedily (so that
    queues and reports are under way)."""
    if not 1 <= tasks <= min(MAX_BATCH, config.vehicles):
        raise ConfigError(
            f"a static instance takes 1 to {min(MAX_BATCH, config.vehicles)} tasks here "
            f"(one per vehicle, at most {MAX_BATCH}), got {tasks}"
        )
    if not 0 <= warmup_steps < config.episode_steps:
        raise ConfigError(
            f"warmup_steps={warmup_steps} must be from 0 to episode_steps - 1 "
            f"({config.episode_steps - 1})"
        )
    sim = OffloadSimulator(config)
    rng = np.random.default_rng(seed)
    sim.reset(rng)
    for _ in range(warmup_steps):
        sim.step(np.argmin(sim.predicted_times(), axis=1))
    sim.force_tasks(rng.choice(config.vehicles, tasks, replace=False))
    return batch_from_simulator(sim)


def greedy_placement(batch: StaticBatch) -> np.ndarray:
    """Every vehicle's own best guess, each unaware of the others' (herds)."""
    out: np.ndarray = np.argmin(batch.predicted, axis=1)
    return out
