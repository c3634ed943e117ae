"""The job-shop dispatching env: a Gymnasium env over :class:`Dispatcher`.

Each step is one decision point (see :mod:`.dispatch`): a machine is free and
work waits for it. The observation describes every job and every machine with
features that do not depend on the instance's size, so a policy that scores
each job (and each machine) with shared weights runs on any ``n x m``:

* ``jobs`` ``[n, 8]``: can start now, done, next operation's time, work left,
  operations left, time waited, the wear and the breakdown of the next
  operation's machine;
* ``machines`` ``[m, 7]``: free, down, maintained, time left on its operation,
  wear, work queued for it, can be maintained;
* ``action_mask`` ``[n + m]``: which actions are valid now.

Actions ``0 .. n-1`` start job ``a``'s next operation now; ``n .. n+m-1``
maintain machine ``a - n`` (valid only when machines break down and that one is
free). An invalid action becomes the valid action with the nearest index (the
lower on a tie) and ``info["invalid_action"]`` says so: fleetmind's PPO samples
unmasked, and a near index is a near job in the same list.

The reward is minus the time that passes until the next decision point, over
the instance's lower bound, so an episode's return is ``-makespan / lower
bound``. Every reset draws a fresh random instance (or reuses a fixed one) and
fresh breakdowns from the reset's seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from fleetmind.core.errors import ConfigError
from fleetmind.envs.scenarios.jobshop.breakdowns import BreakdownModel
from fleetmind.envs.scenarios.jobshop.dispatch import Dispatcher
from fleetmind.envs.scenarios.jobshop.instance import (
    JobShopInstance,
    load_instance,
    random_instance,
    shipped_instance,
)

JOB_FEATURES = 8
MACHINE_FEATURES = 7
FEATURE_RANGE = (-1.0, 100.0)
"""Every feature is clipped to this range (times are in units of the instance's scale)."""


@dataclass(frozen=True)
class JobShopConfig:
    """One job-shop scenario."""

    jobs: int = 10
    """Jobs of each random instance."""
    machines: int = 10
    """Machines (and operations per job) of each random instance."""
    instance: str | None = None
    """A fixed instance instead of random ones: a shipped name (``ta01``) or a file path."""
    breakdowns: bool = False
    """Machines fail and can be maintained."""
    mtbf: float | None = None
    """Mean time between failures; None: 20 mean operations (see :class:`BreakdownModel`)."""
    mttr: float | None = None
    """Mean repair time; None: 2 mean operations."""
    max_decisions_factor: int = 3
    """An episode is truncated after this many times ``n * m`` decisions."""

    def __post_init__(self) -> None:
        if self.jobs <= 0 or self.machines <= 0:
            raise ConfigError(f"jobs={self.jobs} and machines={self.machines} must be positive")
        if self.max_decisions_factor < 1:
            raise ConfigError(f"max_decisions_factor must be >= 1, got {self.max_decisions_factor}")


def fixed_instance(name: str) -> JobShopInstance:
    """A shipped instance by name, else the instance in the file ``name``."""
    if "/" in name or name.endswith(".txt"):
        return load_instance(name)
    return shipped_instance(name)


class JobShopEnv(gym.Env[dict[str, Any], int]):
    """Dispatch the operations of a job shop, one decision point per step."""

    def __init__(self, config: JobShopConfig | None = None) -> None:
        self.config = config or JobShopConfig()
        self.metadata = {"render_modes": []}
        self._fixed = fixed_instance(self.config.instance) if self.config.instance else None
        n = self._fixed.num_jobs if self._fixed else self.config.jobs
        m = self._fixed.num_machines if self._fixed else self.config.machines
        self.num_jobs, self.num_machines = n, m
        self.observation_space = spaces.Dict(
            {
                "jobs": spaces.Box(*FEATURE_RANGE, (n, JOB_FEATURES), np.float32),
                "machines": spaces.Box(*FEATURE_RANGE, (m, MACHINE_FEATURES), np.float32),
                "action_mask": spaces.MultiBinary(n + m),
            }
        )
        # Discrete samples numpy integers; step() takes any integer
        self.action_space = spaces.Discrete(n + m)  # type: ignore[assignment]
        self.shop: Dispatcher | None = None
        self._decisions = 0

    def _instance(self, seed: int) -> JobShopInstance:
        if self._fixed is not None:
            return self._fixed
        return random_instance(self.config.jobs, self.config.machines, seed)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        episode_seed = int(self.np_random.integers(2**31)) if seed is None else seed
        instance = self._instance(episode_seed)
        model = None
        if self.config.breakdowns:
            model = BreakdownModel.for_instance(instance, self.config.mtbf, self.config.mttr)
        self.shop = Dispatcher(instance, model, episode_seed)
        self._scale_time = float(max(instance.durations.max(), 1))
        self._scale_span = float(max(instance.lower_bound(), 1))
        self._decisions = 0
        return self._observe(), self._info()

    def action_mask(self) -> np.ndarray:
        """``[n + m]`` int8: 1 where the action is valid now."""
        shop = self._shop()
        return np.concatenate([shop.candidates(), shop.maintainable()]).astype(np.int8)

    def step(self, action: int) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        shop = self._shop()
        if shop.done:
            raise ConfigError("step() after the episode ended; call reset()")
        valid = np.flatnonzero(self.action_mask())
        chosen = int(valid[np.argmin(np.abs(valid - int(action)))])
        before = shop.now
        if chosen < self.num_jobs:
            shop.dispatch(chosen)
        else:
            shop.maintain(chosen - self.num_jobs)
        self._decisions += 1
        reward = -(shop.now - before) / self._scale_span
        limit = self.config.max_decisions_factor * self.num_jobs * self.num_machines
        truncated = not shop.done and self._decisions >= limit
        info = self._info()
        info["invalid_action"] = chosen != int(action)
        return self._observe(), float(reward), shop.done, truncated, info

    def _shop(self) -> Dispatcher:
        if self.shop is None:
            raise ConfigError("call reset() before step()")
        return self.shop

    def _info(self) -> dict[str, Any]:
        shop = self._shop()
        info: dict[str, Any] = {"action_mask": self.action_mask(), "now": shop.now}
        if shop.done:
            info["makespan"] = shop.schedule().makespan
            info["aborted_operations"] = shop.aborted
        return info

    def _wear(self) -> np.ndarray:
        shop = self._shop()
        return np.array([life.wear(shop.now) for life in shop.lives] or [0.0] * self.num_machines)

    def _observe(self) -> dict[str, np.ndarray]:
        shop = self._shop()
        inst = shop.instance
        n, ops = inst.num_jobs, inst.num_ops
        index = np.minimum(shop.next_op, ops - 1)
        next_machine = inst.machines[np.arange(n), index]
        done = shop.next_op >= ops
        wear, down = self._wear(), shop.machine_down()
        waiting = (~done) & (shop.job_ready <= shop.now)
        jobs = np.stack([
            shop.candidates(),
            done,
            np.where(done, 0, inst.durations[np.arange(n), index]) / self._scale_time,
            shop.remaining_work() / (self._scale_time * ops),
            (ops - shop.next_op) / ops,
            np.where(waiting, shop.now - shop.job_ready, 0) / self._scale_span,
            np.where(done, 0.0, wear[next_machine]),
            np.where(done, False, down[next_machine]),
        ], axis=1)  # fmt: skip
        running = shop.running_job >= 0
        left = inst.durations * (np.arange(ops) >= shop.next_op[:, None])
        queued = np.bincount(inst.machines.ravel(), left.ravel(), minlength=self.num_machines)
        machines = np.stack([
            shop.machine_free(),
            down,
            shop.maintained_until > shop.now,
            np.where(running, shop.running_end - shop.now, 0) / self._scale_time,
            wear,
            queued / self._scale_span,
            shop.maintainable(),
        ], axis=1)  # fmt: skip
        return {
            "jobs": np.clip(jobs, *FEATURE_RANGE).astype(np.float32),
            "machines": np.clip(machines, *FEATURE_RANGE).astype(np.float32),
            "action_mask": self.action_mask(),
        }
