"""When to maintain one machine: a Gymnasium env whose reward is minus the cost.

The machine fails as :class:`MachineLife` draws (calendar time), its sensor is
read every ``sample_every`` time units while it runs, and the fault warning
(:class:`FaultPredictor`, fitted once on ``warning_seeds``) turns the readings
into a probability of failing soon. At each reading the policy chooses:

* ``0`` run on: time moves to the next reading; a failure on the way costs a
  repair (``costs.repair``) and its downtime, then a fresh life starts;
* ``1`` maintain now: it costs a maintenance (``costs.maintenance``) and
  ``maintenance_time`` of downtime, then a fresh life starts.

Downtime costs ``costs.downtime`` per time unit: the production the machine
would have made. The **observation** is ``[warning probability, mean reading
over the window, time since renewal over the mean life]``; the reward is minus
the cost of the step over the cost of one failure (its repair and mean
downtime), so a return of -k is k failures' worth. An episode lasts ``horizon``
time units (truncated there); its ``info`` holds ``total_cost``, ``failures``,
``maintenances`` and ``cost_rate`` (cost per 1000 time units).

Hand-written policies to compare with (:func:`run_policy`): run to failure, a
fixed interval (maintain at a given age) and a warning threshold.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from fleetmind.core.errors import ConfigError
from fleetmind.envs.scenarios.jobshop.breakdowns import BreakdownModel, MachineLife
from fleetmind.envs.scenarios.jobshop.warning import (
    FaultPredictor,
    WarningConfig,
    life_features,
    reference_model,
)

RUN, MAINTAIN = 0, 1


@dataclass(frozen=True)
class MaintenanceCosts:
    """What downtime, repairs and maintenance cost (any currency; all >= 0)."""

    downtime: float = 1.0
    """Lost production per time unit the machine is down (repaired or maintained)."""
    repair: float = 200.0
    """A repair's parts and labour, and the work of the operation the failure aborts."""
    maintenance: float = 20.0
    """A maintenance's parts and labour."""

    def __post_init__(self) -> None:
        for name in ("downtime", "repair", "maintenance"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"maintenance costs: {name} must be >= 0, got {value}")


@dataclass(frozen=True)
class MaintenanceConfig:
    """One machine's maintenance problem."""

    model: BreakdownModel = field(default_factory=reference_model)
    """How the machine fails (default: a Taillard-sized shop's, mean life 1000)."""
    costs: MaintenanceCosts = field(default_factory=MaintenanceCosts)
    """What downtime, repairs and maintenance cost."""
    horizon: int = 20_000
    """Time units of one episode (20 mean lives by default)."""
    warning_seeds: tuple[int, int] = (0, 20)
    """Seeds ``[A, B)`` the fault warning is fitted on (keep evaluation seeds out)."""

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ConfigError(f"maintenance horizon must be >= 1, got {self.horizon}")
        if self.warning_seeds[1] <= self.warning_seeds[0]:
            raise ConfigError(f"warning_seeds {self.warning_seeds} is an empty range")

    @property
    def warning(self) -> WarningConfig:
        return WarningConfig.for_model(self.model)

    @property
    def failure_cost(self) -> float:
        """The cost of one failure: its repair and its mean downtime (the reward's unit)."""
        return max(self.costs.repair + self.costs.downtime * self.model.mean_repair_time, 1e-9)


@functools.lru_cache(maxsize=8)
def fitted_warning(model: BreakdownModel, seeds: tuple[int, int]) -> FaultPredictor:
    """The fault warning of ``model`` fitted on ``range(*seeds)`` (fitted once per process)."""
    return FaultPredictor.fit(model, WarningConfig.for_model(model), range(*seeds))


class MaintenanceEnv(gym.Env[np.ndarray, int]):
    """Decide, at each sensor reading, whether to maintain one machine."""

    def __init__(self, config: MaintenanceConfig | None = None) -> None:
        self.config = config or MaintenanceConfig()
        self.metadata = {"render_modes": []}
        self.predictor = fitted_warning(self.config.model, self.config.warning_seeds)
        self.observation_space = spaces.Box(-10.0, 10.0, (3,), np.float32)
        self.action_space = spaces.Discrete(2)  # type: ignore[assignment]
        self.life: MachineLife | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        episode_seed = int(self.np_random.integers(2**31)) if seed is None else seed
        self.life = MachineLife(self.config.model, episode_seed, 0)
        self.now, self.total_cost, self.failures, self.maintenances = 0, 0.0, 0, 0
        self._start_life()
        return self._observe(), self._info()

    def _start_life(self) -> None:
        self._readings: list[float] = []
        self._read()

    def _read(self) -> None:
        life = self._life()
        self._readings.append(float(life.wear_series(np.array([self.now]))[0]))
        self.features = self._features()

    def _features(self) -> np.ndarray:
        life, window = self._life(), self.predictor.config.window
        recent = np.array(self._readings[-window:])
        ages = np.full(
            len(recent), (self.now - life.renewed_at) / self.config.model.mean_time_between_failures
        )
        last: np.ndarray = life_features(recent, ages, window)[-1]
        return last

    def _life(self) -> MachineLife:
        if self.life is None:
            raise ConfigError("call reset() before step()")
        return self.life

    @property
    def warning(self) -> float:
        """The warning's probability that the machine fails within its horizon."""
        return float(self.predictor.probability(self.features))

    @property
    def age(self) -> int:
        """Time since the machine's last renewal."""
        return self.now - self._life().renewed_at

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        life, costs, model = self._life(), self.config.costs, self.config.model
        if self.now >= self.config.horizon:
            raise ConfigError("step() after the episode ended; call reset()")
        step = self.predictor.config.sample_every
        if int(action) == MAINTAIN:
            cost = costs.maintenance + costs.downtime * model.maintenance_time
            life.renew(self.now + model.maintenance_time)
            self.now, self.maintenances = life.renewed_at, self.maintenances + 1
            self._start_life()
        elif life.failure_at <= self.now + step:
            cost = costs.repair + costs.downtime * (life.repair_end - life.failure_at)
            life.renew(life.repair_end)
            self.now, self.failures = life.renewed_at, self.failures + 1
            self._start_life()
        else:
            cost = 0.0
            self.now += step
            self._read()
        self.total_cost += cost
        truncated = self.now >= self.config.horizon
        return self._observe(), -cost / self.config.failure_cost, False, truncated, self._info()

    def _observe(self) -> np.ndarray:
        obs = [self.warning, self.features[1], self.features[3]]
        return np.clip(np.array(obs, dtype=np.float32), -10.0, 10.0)

    def _info(self) -> dict[str, Any]:
        return {
            "total_cost": self.total_cost,
            "failures": self.failures,
            "maintenances": self.maintenances,
            "cost_rate": 1000 * self.total_cost / max(self.now, 1),
        }


Policy = Callable[[MaintenanceEnv, np.ndarray], int]
"""An action from the env (its hidden state is off limits: use ``warning``, ``age``)
and its observation."""


def run_to_failure(env: MaintenanceEnv, obs: np.ndarray) -> int:
    """Never maintain."""
    return RUN


def fixed_interval(interval: int) -> Policy:
    """Maintain once the machine has run ``interval`` time units since its renewal."""
    return lambda env, obs: MAINTAIN if env.age >= interval else RUN


def warning_threshold(threshold: float) -> Policy:
    """Maintain once the warning's probability reaches ``threshold``."""
    return lambda env, obs: MAINTAIN if env.warning >= threshold else RUN


def run_policy(
    policy: Policy, seeds: Sequence[int], config: MaintenanceConfig | None = None
) -> list[dict[str, Any]]:
    """One episode per seed; each episode's ``info`` at its end."""
    if not seeds:
        raise ConfigError("no evaluation seeds: the seed range is empty")
    env = MaintenanceEnv(config)
    out = []
    for seed in seeds:
        obs, info = env.reset(seed=seed)
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(policy(env, obs))
            done = terminated or truncated
        out.append(info)
    return out


def best_interval(
    seeds: Sequence[int], config: MaintenanceConfig | None = None
) -> tuple[int, dict[int, float]]:
    """The fixed interval with the lowest mean cost rate on ``seeds``, and every
    swept interval's mean cost rate (multiples of the reading interval up to 2.5
    mean lives)."""
    config = config or MaintenanceConfig()
    step = config.warning.sample_every
    top = int(2.5 * config.model.mean_time_between_failures)
    rates = {
        interval: float(
            np.mean([r["cost_rate"] for r in run_policy(fixed_interval(interval), seeds, config)])
        )
        for interval in range(step, top + 1, step)
    }
    return min(rates, key=rates.__getitem__), rates
