"""The learned dispatcher's env: one machine's queue per decision, a fixed number of slots.

:class:`.env.JobShopEnv` offers every waiting job of every free machine at once,
``n + m`` actions whose meaning depends on the instance's size. Most of those
decisions are no decision at all: jobs that wait for different machines all start
now whatever the order, and a job alone in its machine's queue starts now in every
non-delay schedule. This env settles those by itself and asks only what matters:

* a **decision** is a free machine with two or more jobs waiting for it (the
  lowest-numbered such machine first; the others do not depend on its choice);
* its queue is shown in up to :data:`SLOTS` **slots**, jobs ordered by most work
  remaining (ties: lower job index), so slot 0 is always MWKR's choice and a
  policy that always answers 0 builds MWKR's schedule exactly;
* the observation is ``SLOTS x JOB_FEATURES`` slot features then
  ``GLOBAL_FEATURES`` features of the machine and the shop, flat, the same length
  for every instance size: a policy trained on 15x15 runs on 10x10 or 20x15, and
  a served dispatcher has one fixed tensor contract (a shorter queue pads its
  empty slots with zeros; their first feature, "valid", is 0);
* the action is ``Discrete(SLOTS)``; a slot past the queue becomes its last job
  and ``info["invalid_action"]`` says so (fleetmind's PPO samples unmasked);
* the reward is minus the growth of the schedule's **makespan lower bound**
  (:meth:`SlotDispatch.bound`: every job's earliest end and every machine's, given
  what has started and who waits for a busy machine) over the instance's static
  lower bound, as L2D rewards: a choice that makes others wait is paid for at
  once, not when time reaches it, and the rewards still sum to the objective: an
  episode's return is ``1 - makespan / lower bound``.

With breakdowns (``breakdowns=True``) machines fail as in :class:`Dispatcher`;
this env dispatches only (it never maintains).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from fleetmind.core.errors import ConfigError
from fleetmind.envs.scenarios.jobshop.breakdowns import BreakdownModel
from fleetmind.envs.scenarios.jobshop.dispatch import Dispatcher
from fleetmind.envs.scenarios.jobshop.env import FEATURE_RANGE, fixed_instance
from fleetmind.envs.scenarios.jobshop.instance import JobShopInstance, random_instance
from fleetmind.envs.scenarios.jobshop.schedule import Schedule

SLOTS = 8
"""Jobs of one queue shown per decision (a longer queue shows its first 8 by work left)."""
JOB_FEATURES = 13
GLOBAL_FEATURES = 9
OBSERVATION_SIZE = SLOTS * JOB_FEATURES + GLOBAL_FEATURES


@dataclass(frozen=True)
class SlotConfig:
    """One scenario of the slot env."""

    jobs: int = 15
    """Jobs of each random instance."""
    machines: int = 15
    """Machines of each random instance."""
    instance: str | None = None
    """A fixed instance instead of random ones: a shipped name (``ta01``) or a file path."""
    breakdowns: bool = False
    """Machines fail (the instance's default :class:`BreakdownModel`)."""

    def __post_init__(self) -> None:
        if self.jobs <= 0 or self.machines <= 0:
            raise ConfigError(f"jobs={self.jobs} and machines={self.machines} must be positive")


class SlotDispatch:
    """One episode: the decisions that matter, their observations, the schedule."""

    def __init__(
        self, instance: JobShopInstance, model: BreakdownModel | None = None, seed: int = 0
    ) -> None:
        self.shop = Dispatcher(instance, model, seed)
        self.instance = instance
        n, ops = instance.num_jobs, instance.num_ops
        self._rows = np.arange(n)
        self._scale_time = float(max(instance.durations.max(), 1))
        self._span = float(max(instance.lower_bound(), 1))
        # work from each operation to the job's end, with a zero column past the last
        tail = np.cumsum(instance.durations[:, ::-1], axis=1)[:, ::-1]
        self._tail = np.concatenate([tail, np.zeros((n, 1), tail.dtype)], axis=1)
        self._next_dur = np.concatenate(
            [instance.durations[:, 1:], np.zeros((n, 2), instance.durations.dtype)], axis=1
        )
        self._next_machine = np.concatenate(
            [instance.machines[:, 1:], np.full((n, 2), -1, instance.machines.dtype)], axis=1
        )
        self._total_ops = n * ops
        self._ops = np.arange(ops)[None, :]
        self.machine = -1
        """The machine whose queue is being decided (-1 once done)."""
        self.queue = np.zeros(0, dtype=np.int64)
        """Its waiting jobs in slot order."""
        self.settle()

    @property
    def done(self) -> bool:
        return self.shop.done

    def _queues(self) -> tuple[np.ndarray, np.ndarray]:
        """The waiting jobs and the machine each waits for."""
        shop = self.shop
        jobs = np.flatnonzero(shop.candidates())
        return jobs, shop.next_machines()[jobs]

    def settle(self) -> None:
        """Start every job alone in its machine's queue; stop at a queue of two or more."""
        shop = self.shop
        while not shop.done:
            jobs, machines = self._queues()
            counts = np.bincount(machines, minlength=self.instance.num_machines)
            alone = counts[machines] == 1
            if alone.any():
                shop.dispatch_all([int(job) for job in jobs[alone]])
                continue
            self.machine = int(machines.min())
            queue = jobs[machines == self.machine]
            work = self._tail[queue, shop.next_op[queue]]
            self.queue = queue[np.argsort(-work, kind="stable")]
            return
        self.machine, self.queue = -1, np.zeros(0, dtype=np.int64)

    def choose(self, slot: int) -> tuple[int, bool]:
        """Start the job in ``slot`` (a slot past the queue: its last job); the job
        started and whether ``slot`` was past the queue."""
        if self.done:
            raise ConfigError("the schedule is complete; nothing is left to decide")
        shown = min(len(self.queue), SLOTS)
        valid = 0 <= slot < shown
        job = int(self.queue[slot if valid else (shown - 1 if slot >= shown else 0)])
        self.shop.dispatch(job)
        self.settle()
        return job, not valid

    def _free_at(self) -> np.ndarray:
        """``[m]`` when each machine is next free (its operation, maintenance or repair ends)."""
        shop = self.shop
        free = np.maximum(np.where(shop.running_job >= 0, shop.running_end, shop.now), shop.now)
        free = np.maximum(free, shop.maintained_until)
        for machine, life in enumerate(shop.lives):
            if life.is_down(shop.now):
                free[machine] = max(free[machine], life.repair_end)
        return free

    def _bounds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every job's earliest end, every machine's, and each job's unstarted work."""
        shop, inst = self.shop, self.instance
        running = shop.busy_jobs()
        pending = inst.durations * (self._ops >= (shop.next_op + running)[:, None])
        work = pending.sum(axis=1)
        load = np.bincount(inst.machines.ravel(), pending.ravel(), minlength=inst.num_machines)
        free = self._free_at()
        start = np.maximum(np.maximum(shop.job_ready, shop.now), free[shop.next_machines()])
        start[running] = shop.running_end[inst.machines[running, shop.next_op[running]]]
        done = shop.next_op >= inst.num_ops
        start[done] = shop.job_ready[done]
        return start + work, free + load, work

    def bound(self) -> int:
        """A lower bound on the makespan of any completion of the schedule so far (the
        makespan once done)."""
        jobs, machines, _ = self._bounds()
        return int(max(jobs.max(), machines.max()))

    def observe(self) -> np.ndarray:
        """The flat observation of the current decision (zeros once done)."""
        out = np.zeros(OBSERVATION_SIZE, dtype=np.float32)
        if self.done:
            return out
        shop, inst = self.shop, self.instance
        now, st, span = shop.now, self._scale_time, self._span
        queue = self.queue[:SLOTS]
        index = shop.next_op[queue]
        left = self._tail[self._rows, shop.next_op]  # every job's work left
        work = left[queue]
        duration = inst.durations[queue, index].astype(float)
        next_machine = self._next_machine[queue, index]
        # work still to do on each machine
        pending = inst.durations * (self._ops >= shop.next_op[:, None])
        load = np.bincount(inst.machines.ravel(), pending.ravel(), minlength=inst.num_machines)
        running = shop.running_job >= 0
        job_bound, machine_bound, unstarted = self._bounds()
        bound = max(job_bound.max(), machine_bound.max())
        # the bound's growth if each queued job starts now: the others for this machine
        # (in the queue, or still to arrive) start after it
        bound_for = shop.next_machines()
        waiting = (bound_for == self.machine) & ~shop.busy_jobs() & (shop.next_op < inst.num_ops)
        others = np.flatnonzero(waiting)
        ready, tails = np.maximum(shop.job_ready[others], now), unstarted[others]
        growth = np.array([
            max(0.0, float(np.max(np.where(others == job, 0, np.maximum(ready, now + d) + tails),
                                  initial=0)) - bound)
            for job, d in zip(queue, duration, strict=True)
        ])  # fmt: skip
        busy_for = np.where(running, shop.running_end - now, 0)
        has_next = next_machine >= 0
        nm = np.where(has_next, next_machine, 0)
        slots = np.stack([
            np.ones(len(queue)),
            duration / st,
            work / (st * inst.num_ops),
            (inst.num_ops - index) / inst.num_ops,
            (now - shop.job_ready[queue]) / span,
            self._next_dur[queue, index] / st,
            np.where(has_next, load[nm], 0) / span,
            np.where(has_next, busy_for[nm], 0) / st,
            work / max(float(left.max()), 1.0),
            duration / max(float(duration.max()), 1.0),
            (work - duration) / span,
            np.where(has_next, load[nm] / max(float(load.max()), 1.0), 0),
            growth / span,
        ], axis=1)  # fmt: skip
        out[: len(queue) * JOB_FEATURES] = slots.ravel()
        wear = [life.wear(now) for life in shop.lives] if shop.lives else [0.0]
        done_ops = float(np.minimum(shop.next_op, inst.num_ops).sum())
        out[SLOTS * JOB_FEATURES :] = [
            done_ops / self._total_ops,
            now / span,
            load[self.machine] / span,
            load[self.machine] / max(float(load.max()), 1.0),
            len(self.queue) / SLOTS,
            float(running.mean()),
            float(wear[self.machine]) if shop.lives else 0.0,
            float(shop.machine_down().mean()),
            bound / span,
        ]
        return np.clip(out, *FEATURE_RANGE)

    def schedule(self) -> Schedule:
        return self.shop.schedule()


class JobShopSlotEnv(gym.Env[np.ndarray, int]):
    """Dispatch a job shop one contested queue at a time (see the module docstring)."""

    def __init__(self, config: SlotConfig | None = None) -> None:
        self.config = config or SlotConfig()
        self.metadata = {"render_modes": []}
        self._fixed = fixed_instance(self.config.instance) if self.config.instance else None
        self.observation_space = spaces.Box(*FEATURE_RANGE, (OBSERVATION_SIZE,), np.float32)
        self.action_space = spaces.Discrete(SLOTS)  # type: ignore[assignment]
        self.episode: SlotDispatch | None = None
        self._bound = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        episode_seed = int(self.np_random.integers(2**31)) if seed is None else seed
        instance = self._fixed or random_instance(
            self.config.jobs, self.config.machines, episode_seed
        )
        model = BreakdownModel.for_instance(instance) if self.config.breakdowns else None
        self.episode = SlotDispatch(instance, model, episode_seed)
        self._bound = instance.lower_bound()
        return self.episode.observe(), self._info()

    def _episode(self) -> SlotDispatch:
        if self.episode is None:
            raise ConfigError("call reset() before step()")
        return self.episode

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        episode = self._episode()
        if episode.done:
            raise ConfigError("step() after the episode ended; call reset()")
        _, invalid = episode.choose(int(action))
        bound = episode.bound()
        reward = -(bound - self._bound) / max(float(episode.instance.lower_bound()), 1.0)
        self._bound = bound
        info = self._info()
        info["invalid_action"] = invalid
        return episode.observe(), float(reward), episode.done, False, info

    def _info(self) -> dict[str, Any]:
        episode = self._episode()
        info: dict[str, Any] = {"queue": len(episode.queue), "now": episode.shop.now}
        if episode.done:
            info["makespan"] = episode.schedule().makespan
            info["aborted_operations"] = episode.shop.aborted
        return info


Decide = Callable[[np.ndarray], int]
"""A dispatcher: the slot to start, from one flat observation."""


def dispatch_slots(
    instance: JobShopInstance,
    decide: Decide,
    model: BreakdownModel | None = None,
    seed: int = 0,
) -> Schedule:
    """The schedule ``decide`` builds on ``instance`` (online, under ``model``'s
    breakdowns of ``seed`` when given)."""
    episode = SlotDispatch(instance, model, seed)
    while not episode.done:
        episode.choose(decide(episode.observe()))
    return episode.schedule()
